/** A filter: one of `options`, or every one ("All", the empty value). */
export function Choice(props: { label: string; value: string; options: readonly string[]; onChange(value: string): void }) {
  return (
    <label>
      {props.label}{' '}
      <select value={props.value} onChange={(event) => props.onChange(event.target.value)}>
        <option value="">All</option>
        {props.options.map((name) => (
          <option key={name}>{name}</option>
        ))}
      </select>
    </label>
  );
}
