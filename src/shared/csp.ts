// The interface's Content-Security-Policy, one definition for the Electron shell and `fedforward
// serve` (src/renderer/index.html carries the same in a meta tag).
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
