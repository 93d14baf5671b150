import { describe, expect, it } from 'vitest';
import {
  classificationRank,
  hostFamily,
  hostOf,
  isAdminScope,
  isEgress,
  isSecretRead,
  namespaceOf,
  resourceKey,
} from '../../../services/core/detect/signals.ts';
import { dataAccess, taskCtx, toolCall } from './fixtures.ts';

describe('hostOf', () => {
  it.each([
    ['https://Paste.Example.com:443/x?y', 'paste.example.com'],
    ['http://user@10.0.0.5/admin', '10.0.0.5'],
    ['api.acme.io/v1/users', 'api.acme.io'],
    ['api.acme.io:8443', 'api.acme.io'],
    ['evil.ru', 'evil.ru'],
    ['10.1.2.3', '10.1.2.3'],
    ['localhost', 'localhost'],
  ])('%s names host %s', (target, host) => {
    expect(hostOf(target)).toBe(host);
  });
  it.each(['crm.customers', 'kb.articles', 'reports/q1.csv', '/etc/passwd', '', 'data.csv'])(
    '%s is not a host',
    (target) => {
      expect(hostOf(target)).toBeUndefined();
    },
  );
});

describe('hostFamily', () => {
  it('keeps the last two labels', () => {
    expect(hostFamily('api.crm.acme.io')).toBe('acme.io');
    expect(hostFamily('acme.io')).toBe('acme.io');
    expect(hostFamily('localhost')).toBe('localhost');
    expect(hostFamily('10.1.2.3')).toBe('10.1.2.*');
  });
});

describe('isEgress / isSecretRead', () => {
  const ctx = taskCtx('t', 'task');
  it('sees an HTTP tool with a URL target as egress, a read-only tool as contact', () => {
    const post = toolCall(ctx, 'http_request', { target: 'https://x.example.com/upload' });
    expect(isEgress(post, 'x.example.com')).toBe(true);
    const get = toolCall(ctx, 'git_checkout', { sideEffect: 'read', target: 'https://git.acme.io/r' });
    expect(isEgress(get, 'git.acme.io')).toBe(false);
    expect(isEgress(toolCall(ctx, 'summarize'), undefined)).toBe(false);
  });
  it('sees a data write to a host as egress and a read as not', () => {
    expect(
      isEgress(
        dataAccess(ctx, 's3://bucket/k', { operation: 'PUT', host: 'bucket.s3.amazonaws.com' }),
        'bucket.s3.amazonaws.com',
      ),
    ).toBe(true);
    expect(isEgress(dataAccess(ctx, 'crm.customers', { host: 'db.acme.io' }), 'db.acme.io')).toBe(false);
  });
  it('recognises secret reads by classification, resource or tool name', () => {
    expect(isSecretRead(dataAccess(ctx, 'any.table', { classification: 'restricted' }))).toBe(true);
    expect(isSecretRead(dataAccess(ctx, 'vault/secret/db'))).toBe(true);
    expect(isSecretRead(dataAccess(ctx, '/home/a/.env'))).toBe(true);
    expect(isSecretRead(dataAccess(ctx, 'kb.articles', { classification: 'internal' }))).toBe(false);
    expect(isSecretRead(toolCall(ctx, 'get_secret'))).toBe(true);
    expect(isSecretRead(toolCall(ctx, 'post_token', { sideEffect: 'write' }))).toBe(false);
    expect(isSecretRead(dataAccess(ctx, 'vault/secret/db', { operation: 'INSERT' }))).toBe(false);
  });
});

describe('isAdminScope', () => {
  it.each(['admin', 'iam:admin', 'org.owner', 'root', '*', 's3:*', 'repo:all', 'sudo'])('%s is administrative', (s) => {
    expect(isAdminScope(s)).toBe(true);
  });
  it.each(['helpdesk:read', 'deploy:prod', 'administration-report:read', 'tickets:write', 'overall:read'])(
    '%s is not',
    (s) => {
      expect(isAdminScope(s)).toBe(false);
    },
  );
});

describe('resourceKey / namespaceOf / classificationRank', () => {
  it('folds ids into #', () => {
    expect(resourceKey('tickets/12345')).toBe('tickets/#');
    expect(resourceKey('https://api.acme.io/v1/users/42?x=1')).toBe('api.acme.io/v#/users/#');
    expect(resourceKey('docs/3f2b8c1e-1111-4a2b-9c3d-0123456789ab')).toBe('docs/#');
    expect(resourceKey('CRM.Customers')).toBe('crm.customers');
  });
  it('takes the namespace before the first dot or slash, or the host', () => {
    expect(namespaceOf('crm.customers')).toBe('crm');
    expect(namespaceOf('/etc/passwd')).toBe('etc');
    expect(namespaceOf('api.acme.io/v#/users')).toBe('api.acme.io');
    expect(namespaceOf('tickets/#')).toBe('tickets');
  });
  it('ranks classifications', () => {
    expect(classificationRank('public')).toBe(0);
    expect(classificationRank('restricted')).toBe(3);
    expect(classificationRank('toString')).toBe(-1);
    expect(classificationRank(undefined)).toBe(-1);
  });
});
