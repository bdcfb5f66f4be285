import { type ReactNode, useEffect, useRef } from 'react';

/**
 * A modal question before an admin action. The browser's own <dialog> keeps the keyboard inside
 * it, closes on Escape, and gives focus back where it was; Cancel has it first, so Enter pressed
 * by habit does nothing harmful.
 */
export function Confirm(props: { title: string; children?: ReactNode; confirmLabel: string; onConfirm(): void; onCancel(): void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    element?.showModal();
    return () => element?.close();
  }, []);
  return (
    <dialog ref={dialog} className="confirm" aria-labelledby="confirm-title" onCancel={props.onCancel}>
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          props.onConfirm();
        }}
      >
        <h2 id="confirm-title">{props.title}</h2>
        {props.children}
        <div className="confirm-buttons">
          <button type="button" autoFocus onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit" className="danger">
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
