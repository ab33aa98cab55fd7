#!/usr/bin/env node
// The fault suite's fence command (fencing.method exec): the test analogue of power fencing.
// It kills the dead incarnation's process by the pid and start time hearth recorded, and says
// "fenced" (exit 0) only once that process is certainly gone:
//  - another boot or pid namespace: refused (exit 1) — that pid names some other process here;
//  - no process recorded: refused (exit 1) — there is nothing it could check;
//  - /proc/<pid> gone, or its start time differs (pid reused): already gone, exit 0;
//  - else SIGKILL (a SIGSTOPped process dies of it too), then wait — bounded — until it is gone.
// Like a real fence command, it is idempotent: run again for a fenced process, it exits 0.
//
// `--refuse-dir <dir>` (fencing.exec.args): while a file named like the dead incarnation's host
// (HEARTH_FENCE_HOST, e.g. `w2@be`) exists in <dir>, refuse (exit 1, quoting the file) without
// touching the process — the fault suite's fence that fails, like a power switch out of reach.
// An argument, not an environment variable: hearth hands a fence command PATH and HEARTH_FENCE_*
// only.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const WAIT_MS = 5_000;
const POLL_MS = 20;

const env = process.env;
const pid = Number(env.HEARTH_FENCE_PID ?? '');
const startTicks = env.HEARTH_FENCE_START_TICKS ?? '';
const say = (text) => console.log(`fence-kill ${env.HEARTH_FENCE_INCARNATION ?? '?'}: ${text}`);

function refuse(text) {
  console.error(`fence-kill ${env.HEARTH_FENCE_INCARNATION ?? '?'}: ${text}`);
  process.exit(1);
}

/** Field 3 (state) and 22 (start ticks) of /proc/<pid>/stat, or undefined when it is gone. */
function look() {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ESRCH') return undefined;
    throw err;
  }
  // The command name (field 2) may hold spaces and parentheses: fields 3… follow the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 1).trim().split(/\s+/);
  return { state: rest[0], startTicks: rest[19] };
}

/** Gone: no entry, a later process under the pid, or a zombie with every thread ended. */
function gone() {
  const now = look();
  if (now === undefined) return 'its /proc entry is gone';
  if (now.startTicks !== startTicks) return `pid ${pid} now belongs to a later process`;
  if (now.state === 'X') return 'it is dead';
  if (now.state === 'Z') {
    try {
      if (readdirSync(`/proc/${pid}/task`).length <= 1) return 'it has exited (a zombie, not yet reaped)';
    } catch {
      return 'its /proc entry is gone';
    }
  }
  return undefined;
}

const refuseAt = process.argv.indexOf('--refuse-dir');
if (refuseAt !== -1) {
  const dir = process.argv[refuseAt + 1];
  if (!dir) refuse('--refuse-dir needs a directory');
  const host = env.HEARTH_FENCE_HOST ?? '';
  const file = join(dir, host);
  if (host !== '' && !host.includes('/') && existsSync(file)) refuse(`refused for ${host}: ${readFileSync(file, 'utf8').trim() || 'no reason given'}`);
}

if (env.HEARTH_FENCE_PID === undefined || env.HEARTH_FENCE_PID === '' || !Number.isSafeInteger(pid) || pid <= 0 || !/^\d+$/.test(startTicks)) {
  refuse('no process recorded (HEARTH_FENCE_PID / HEARTH_FENCE_START_TICKS); cannot tell whether it is gone');
}
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
if ((env.HEARTH_FENCE_BOOT_ID ?? '') !== bootId) refuse(`it ran on boot ${env.HEARTH_FENCE_BOOT_ID ?? '(none)'}, this is boot ${bootId}: not this machine`);
const namespace = readlinkSync('/proc/self/ns/pid');
if ((env.HEARTH_FENCE_PID_NAMESPACE ?? '') !== namespace) refuse(`it ran in pid namespace ${env.HEARTH_FENCE_PID_NAMESPACE ?? '(none)'}, this is ${namespace}`);

const already = gone();
if (already) {
  say(`process ${pid} was already gone (${already})`);
  process.exit(0);
}
try {
  process.kill(pid, 'SIGKILL');
  say(`sent SIGKILL to process ${pid} (start ticks ${startTicks})`);
} catch (err) {
  if (err.code !== 'ESRCH') refuse(`cannot kill process ${pid}: ${err.code ?? err.message}`);
}
const deadline = Date.now() + WAIT_MS;
for (;;) {
  const why = gone();
  if (why) {
    say(`process ${pid} is gone (${why})`);
    process.exit(0);
  }
  if (Date.now() > deadline) refuse(`process ${pid} still there ${WAIT_MS} ms after SIGKILL`);
  await sleep(POLL_MS);
}
