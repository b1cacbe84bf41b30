// api.js -- the admin server's JSON API (docs/admin.md, "HTTP conventions").
// The session cookie is HttpOnly and goes by itself; every change carries
// the session's CSRF token in X-CSRF-Token. Errors come back as ApiError
// with the server's code and message, which the pages show as they are.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const CSRF_KEY = 'pa-console-csrf';
let session = null; // {user, role, csrf_token, expires_at} of the logged-in operator
let onLoggedOut = () => {};

export const roles = { viewer: 1, operator: 2, admin: 3 };

export function currentSession() {
  return session;
}
export function can(role) {
  return session !== null && (roles[session.role] || 0) >= roles[role];
}
export function whenLoggedOut(fn) {
  onLoggedOut = fn;
}

function setSession(s) {
  session = s;
  // The token is only needed by this tab; a reload keeps it when the
  // server's GET /session does not repeat it.
  if (s && s.csrf_token) sessionStorage.setItem(CSRF_KEY, s.csrf_token);
  if (!s) sessionStorage.removeItem(CSRF_KEY);
}

export async function request(method, path, { json, body, type } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    const token = session?.csrf_token || sessionStorage.getItem(CSRF_KEY);
    if (token) headers['X-CSRF-Token'] = token;
  }
  let payload = body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  } else if (body !== undefined) {
    headers['Content-Type'] = type || 'application/octet-stream';
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'network', `the admin server did not answer (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: `http_${res.status}`, message: text || res.statusText };
    if (res.status === 401 && path !== '/api/v1/session') {
      setSession(null);
      onLoggedOut();
    }
    throw new ApiError(res.status, err.code, err.message || err.code);
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, json) => request('POST', path, { json: json ?? {} });
export const put = (path, json) => request('PUT', path, { json });
export const patch = (path, json) => request('PATCH', path, { json });
export const del = (path) => request('DELETE', path);

export async function login(user, password) {
  const s = await request('POST', '/api/v1/session', { json: { user, password } });
  setSession(s);
  return s;
}

// Who is logged in (null when nobody): on a reload the cookie is still there.
export async function resume() {
  try {
    const s = await request('GET', '/api/v1/session');
    if (!s || !s.user) return null;
    if (!s.csrf_token) s.csrf_token = sessionStorage.getItem(CSRF_KEY);
    setSession(s);
    return s;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function logout() {
  try {
    await request('DELETE', '/api/v1/session');
  } finally {
    setSession(null);
  }
}

// Path segments are always escaped: ids and serials come from data.
export const seg = (v) => encodeURIComponent(String(v));
