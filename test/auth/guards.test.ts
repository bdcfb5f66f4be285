import { describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/actor.ts';
import { ForbiddenError, UnauthenticatedError } from '../../src/domain/errors.ts';
import { readScope, requireAdmin, requireNode, requireUser, requireUserOrService } from '../../src/domain/guards.ts';
import { HTTP_STATUS } from '../../src/transport/errors.ts';

const nodeId = '0190a6f2-3b1c-7d4e-8f00-00000000000a';
const anonymous: Actor = { kind: 'anonymous' };
const user: Actor = { kind: 'user', userId: '0190a6f2-3b1c-7d4e-8f00-123456789abc', isAdmin: false, plan: null, isReseller: false };
const admin: Actor = { kind: 'user', userId: '0190a6f2-3b1c-7d4e-8f00-123456789abd', isAdmin: true, plan: null, isReseller: false };
const service: Actor = { kind: 'service', name: 'service' };
const node: Actor = { kind: 'node', nodeId };

describe('guards', () => {
  it('requireUser', () => {
    expect(requireUser(user)).toBe(user);
    expect(requireUser(admin)).toBe(admin);
    expect(() => requireUser(anonymous)).toThrow(UnauthenticatedError);
    expect(() => requireUser(service)).toThrow(ForbiddenError);
    expect(() => requireUser(node)).toThrow(ForbiddenError);
  });

  it('requireAdmin', () => {
    expect(requireAdmin(admin)).toBe(admin);
    expect(() => requireAdmin(anonymous)).toThrow(UnauthenticatedError);
    expect(() => requireAdmin(user)).toThrow(ForbiddenError);
    expect(() => requireAdmin(service)).toThrow(ForbiddenError);
    expect(() => requireAdmin(node)).toThrow(ForbiddenError);
  });

  it('requireNode', () => {
    expect(requireNode(node)).toBe(node);
    expect(requireNode(node, nodeId)).toBe(node);
    expect(requireNode(node, nodeId.toUpperCase())).toBe(node);
    expect(() => requireNode(node, '0190a6f2-3b1c-7d4e-8f00-00000000000b')).toThrow(ForbiddenError);
    expect(() => requireNode(anonymous, nodeId)).toThrow(UnauthenticatedError);
    expect(() => requireNode(user)).toThrow(ForbiddenError);
    expect(() => requireNode(admin)).toThrow(ForbiddenError);
    expect(() => requireNode(service)).toThrow(ForbiddenError);
  });

  it('requireUserOrService', () => {
    expect(requireUserOrService(user)).toBe(user);
    expect(requireUserOrService(admin)).toBe(admin);
    expect(requireUserOrService(service)).toBe(service);
    expect(() => requireUserOrService(anonymous)).toThrow(UnauthenticatedError);
    expect(() => requireUserOrService(node)).toThrow(ForbiddenError);
  });

  it("readScope: users read their own, admins and services everyone's", () => {
    expect(readScope(user)).toEqual({ userId: '0190a6f2-3b1c-7d4e-8f00-123456789abc' });
    expect(readScope(admin)).toEqual({});
    expect(readScope(service)).toEqual({});
    expect(() => readScope(anonymous)).toThrow(UnauthenticatedError);
    expect(() => readScope(node)).toThrow(ForbiddenError);
  });

  it('map to 401 and 403', () => {
    expect(HTTP_STATUS[new UnauthenticatedError('x').code]).toBe(401);
    const error = (() => {
      try {
        requireNode(node, '0190a6f2-3b1c-7d4e-8f00-00000000000b');
      } catch (caught) {
        return caught as ForbiddenError;
      }
    })();
    expect(error && HTTP_STATUS[error.code]).toBe(403);
    expect(error?.details).toEqual({
      authenticated_node_id: nodeId,
      requested_node_id: '0190a6f2-3b1c-7d4e-8f00-00000000000b',
    });
  });
});
