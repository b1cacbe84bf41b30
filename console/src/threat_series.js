// threat_series.js -- the threat answer (GET /api/v1/threats:
// {groups: [{group, series: [{t, attempts, not_genuine, not_genuine_rate,
// rate_limited, grants, machine_limit, revocations}]}], top_addresses:
// [{address, refusals}]}) turned into what the charts draw: one time axis,
// per group the not-genuine rate (null where a bucket had no attempt) and
// the rate-limit refusals, the top addresses, and revocations per bucket
// summed over the groups (only buckets that have any).
export function threatSeries(r) {
  const groups = (r.groups || []).map((g) => ({
    group: g.group,
    points: new Map((g.series || []).map((p) => [Number(p.t), p])),
  }));
  const times = [...new Set(groups.flatMap((g) => [...g.points.keys()]))].sort((a, b) => a - b);
  const rateOf = (p) => {
    if (!p) return null;
    const attempts = Number(p.attempts ?? Number(p.not_genuine ?? 0) + Number(p.grants ?? 0));
    if (!attempts) return null;
    return p.not_genuine_rate !== undefined ? Number(p.not_genuine_rate) : Number(p.not_genuine ?? 0) / attempts;
  };
  const revocations = times
    .map((t) => ({ t, count: groups.reduce((n, g) => n + Number(g.points.get(t)?.revocations ?? 0), 0) }))
    .filter((v) => v.count > 0);
  return {
    times,
    groups: groups.map((g) => ({
      group: g.group,
      rate: times.map((t) => rateOf(g.points.get(t))),
      rateLimited: times.map((t) => Number(g.points.get(t)?.rate_limited ?? 0)),
      notGenuine: times.map((t) => Number(g.points.get(t)?.not_genuine ?? 0)),
    })),
    top: (r.top_addresses || []).map((a) => ({ addr: a.address ?? a.addr, count: Number(a.refusals ?? 0) })),
    revocations,
  };
}

// A bucket width (whole minutes) that draws the range in about 144 points.
export function stepFor(from, to) {
  const minutes = Math.max(1, Math.ceil((Number(to) - Number(from)) / 144 / 60));
  return String(minutes * 60);
}
