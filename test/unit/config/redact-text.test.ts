// Free text from another program (a fence command's output) is logged: secrets in it are redacted.
import { describe, expect, it } from 'vitest';
import { redactText } from '../../../src/config/redact.js';

describe('redactText', () => {
  it.each([
    ['a URL with a password', 'GET https://admin:hunter2@bmc1/redfish', 'GET https://admin:[REDACTED]@bmc1/redfish'],
    ['key=value', 'ipmi password=hunter2 user=admin', 'ipmi password=[REDACTED] user=admin'],
    ['key: value', 'BMC_PASSWORD: hunter2', 'BMC_PASSWORD: [REDACTED]'],
    ['JSON', '{"password": "hunter 2", "user": "admin"}', '{"password": [REDACTED], "user": "admin"}'],
    ['an option and its value', 'fence_ipmilan --ip=10.0.0.9 --password hunter2 --action=off', 'fence_ipmilan --ip=10.0.0.9 --password [REDACTED] --action=off'],
    ['an option with =', 'fence_ipmilan --password=hunter2 -o off', 'fence_ipmilan --password=[REDACTED] -o off'],
    ['an api token', 'api_token=abc123 apiKey: xyz', 'api_token=[REDACTED] apiKey: [REDACTED]'],
    ['an Authorization header', 'Authorization: Bearer abc.def.ghi', 'Authorization: Bearer [REDACTED]'],
  ])('redacts %s', (_what, text, expected) => {
    expect(redactText(text)).toBe(expected);
  });

  it('leaves text without secrets alone, host ids included', () => {
    expect(redactText('Success: Powered OFF\nnode1@rbd fenced\n')).toBe('Success: Powered OFF\nnode1@rbd fenced\n');
  });

  it('errs towards hiding: a --password-script path goes too', () => {
    expect(redactText('--password-script=/etc/hearth/bmc-pw --action=off')).toBe('--password-script=[REDACTED] --action=off');
  });
});
