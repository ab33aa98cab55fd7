import type { Logger } from '../../src/observability/logger.js';

/** One line a {@link recordingLogger} saw. */
export interface RecordedLine {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

/**
 * A logger that records each line's message in `messages` (and the whole line in `lines`,
 * when given): tests wait for what a component says it is doing instead of sleeping.
 * Children write to the same arrays, with their bindings merged into `fields`.
 */
export function recordingLogger(messages: string[], lines?: RecordedLine[], bindings: Record<string, unknown> = {}): Logger {
  const write =
    (level: RecordedLine['level']) =>
    (obj: unknown, msg?: string): void => {
      const text = typeof obj === 'string' ? obj : (msg ?? '');
      messages.push(text);
      lines?.push({ level, msg: text, fields: { ...bindings, ...(typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>) : {}) } });
    };
  return {
    child: (more) => recordingLogger(messages, lines, { ...bindings, ...more }),
    trace: write('trace'),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    fatal: write('fatal'),
    isLevelEnabled: () => true,
  };
}
