// seats.js -- an order's seats as the pages show them: used, free, the
// warning level and whether the order is below it (docs/volume.md: the
// warning fires when free seats fall below seat_warning). The server says
// `warning` itself; it is computed here only when an answer lacks it.
export function seatsOf(o) {
  const total = Number(o.seats ?? 0);
  const used = Number(o.seats_used ?? 0);
  const free = o.seats_free !== undefined ? Number(o.seats_free) : Math.max(0, total - used);
  const warnAt = Number(o.seat_warning ?? 0);
  const warning = o.warning !== undefined ? Boolean(o.warning) : warnAt > 0 && total > 0 && free < warnAt;
  return { total, used, free, warnAt, warning, unlimited: total === 0 };
}

export function warningText(o) {
  const s = seatsOf(o);
  const who = o.customer ? ` (${o.customer})` : '';
  return `Order ${o.serial}${who} has ${s.free} free seat${s.free === 1 ? '' : 's'}, below its warning level of ${s.warnAt}.`;
}
