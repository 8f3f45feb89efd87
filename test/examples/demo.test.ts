// `npm run demo` as a newcomer runs it: a child process that must exit 0 by itself, quickly, and print
// the summary that explains what happened.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('examples/demo.ts', () => {
  it('exits 0 on its own and prints the expected summary', async () => {
    const { code, stdout, stderr, ms } = await runDemo();

    // The forged events the demo sends leave a trace (the default logger's warnings), nothing else.
    const lines = stderr.split('\n').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^\[b24-portal-tokens\] warn: Lifecycle event refused \{"memberId":"[0-9a-f]+","event":"ONAPP[A-Z]+","reason":"[a-z_]+"\}$/);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(20_000);
    const summary = stdout.slice(stdout.indexOf('== Summary'));
    expect(summary).toContain('OK   Installed 3 portals, each proven with the OAuth host (3 refreshes)');
    expect(summary).toContain('OK   Refreshes after expiry: 1 per portal (3 total) for 30 concurrent calls, 0 failed, 0 refresh tokens reused');
    expect(summary).toContain('OK   Forged install refused: 403, stored record unchanged');
    expect(summary).toContain('OK   Forged uninstall refused: 403, portal still works');
    expect(summary).toMatch(/OK {3}Uninstalled initech\.bitrix24\.test: its record is deleted, profile answers 404/);
    expect(summary).not.toContain('FAIL');
    expect(stdout).toContain('All checks passed.');
    // The bare-SDK contrast must show the hazard the library removes.
    expect(stdout).toMatch(/bare SDK: \d+ refresh requests, [1-9]\d* reused a spent refresh token/);
  });
});
