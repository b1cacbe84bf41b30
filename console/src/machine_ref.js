// machine_ref.js -- the two names of a volume machine. The approvals queue
// names it ORDER-DIGEST (the order's serial, '-', the machine digest in
// hex, as `activation-server order machines` prints it); the machine
// directory names it by its own 12-byte id (base64url), the first 12 bytes
// of SHA-1("o" SERIAL NUL digest), as machine_dir.lua derives it. The
// controls take either. The directory id follows from the queue's name, not
// the reverse, so the approvals queue links each request to its machine.

// The name the controls take for a directory row: its id, for machines of
// an order (retail machines have no seat controls).
export function controlRef(m) {
  return m.order ? m.id : null;
}

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export async function directoryId(order, hex) {
  const head = new TextEncoder().encode(`o${order}\0`);
  const digest = new Uint8Array(hex.match(/../g).map((x) => parseInt(x, 16)));
  const msg = new Uint8Array(head.length + digest.length);
  msg.set(head);
  msg.set(digest, head.length);
  const sha = new Uint8Array(await crypto.subtle.digest('SHA-1', msg));
  return b64url(sha.slice(0, 12));
}
