// seats.js -- an order's seats as the pages show them: used, free, the
// warning level and whether the order is below it (docs/volume.md: the
// warning fires when free seats fall below seat_warning). They come from
// the order's own answer (GET /api/v1/orders/{serial}, `seats_status`);
// the list carries only what was sold.
export const serialOf = (o) => o.service_serial ?? o.serial;

export function seatsOf(o) {
  const s = o.seats_status || {};
  const total = s.total === null ? 0 : Number(s.total ?? o.seats ?? 0);
  const used = Number(s.used ?? 0);
  const free = s.free === null || s.free === undefined ? Math.max(0, total - used) : Number(s.free);
  const warnAt = Number(s.seat_warning ?? o.seat_warning ?? 0);
  const warning = s.warning !== undefined ? Boolean(s.warning) : warnAt > 0 && total > 0 && free < warnAt;
  return { known: Boolean(o.seats_status), total, used, free, warnAt, warning, unlimited: s.total === null || o.mode === 'unlimited' };
}

export function warningText(o) {
  const s = seatsOf(o);
  const who = o.customer ? ` (${o.customer})` : '';
  return `Order ${serialOf(o)}${who} has ${s.free} free seat${s.free === 1 ? '' : 's'}, below its warning level of ${s.warnAt}.`;
}
