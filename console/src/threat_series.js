// threat_series.js -- the threat answer turned into what the charts draw:
// one time axis (the minutes any group has), per group the not-genuine rate
// (not-genuine / (not-genuine + grants), null where a minute had neither)
// and the rate-limit refusals, the top addresses, and revocations per time.
export function threatSeries(r) {
  const groups = (r.groups || r.series || []).map((g) => ({
    group: g.group,
    points: new Map((g.points || []).map((p) => [Number(p.t ?? p.minute), p])),
  }));
  const times = [...new Set(groups.flatMap((g) => [...g.points.keys()]))].sort((a, b) => a - b);
  return {
    times,
    groups: groups.map((g) => ({
      group: g.group,
      rate: times.map((t) => {
        const p = g.points.get(t);
        if (!p) return null;
        const bad = Number(p.not_genuine ?? 0);
        const all = bad + Number(p.grants ?? p.granted ?? 0);
        return all > 0 ? bad / all : null;
      }),
      rateLimited: times.map((t) => Number(g.points.get(t)?.rate_limited ?? 0)),
    })),
    top: (r.top_addresses || r.top || []).map((a) => ({ addr: a.addr ?? a.address ?? a.ip, count: Number(a.refusals ?? a.count ?? a.score ?? 0) })),
    revocations: (r.revocations || []).map((v) => ({ t: Number(v.t ?? v.at), count: Number(v.count ?? 1) })),
  };
}
