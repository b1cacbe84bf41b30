// format.js -- how times, statuses and query strings look in the console.

// Unix seconds as "2026-12-01 14:36:05 UTC" (the server's times are UTC).
export function time(s) {
  if (s === null || s === undefined || s === '' || Number(s) === 0) return '—';
  const d = new Date(Number(s) * 1000);
  if (Number.isNaN(d.getTime())) return String(s);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// A datetime-local value (read as UTC, as the page says) to unix seconds, or ''.
export function toUnix(v) {
  if (!v) return '';
  const t = Date.parse(`${v}Z`);
  return Number.isNaN(t) ? '' : String(Math.floor(t / 1000));
}

// Unix seconds to a datetime-local value in UTC.
export function fromUnix(s) {
  if (!s) return '';
  const d = new Date(Number(s) * 1000);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 16);
}

// A query string of the non-empty values, in the order given.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const statusText = {
  active: 'active',
  pending: 'pending',
  expired: 'expired',
  deactivated: 'deactivated',
  awaiting_approval: 'awaiting approval',
};
