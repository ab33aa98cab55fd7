/**
 * Cinder's datetime form on the wire: `2016-06-01T02:46:28.123000` — UTC, microseconds, no
 * zone (Cinder serialises naive UTC datetimes). Every JSON view formats times through this.
 */

/** Epoch ms → `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC with no zone. */
export function formatCinderTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 23)}000`;
}
