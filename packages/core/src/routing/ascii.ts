/** The byte values the request-target and Host parsers (uri.ts, server-select.ts) branch on. */
export const HASH = 0x23
export const PERCENT = 0x25
export const DOT = 0x2e
export const SLASH = 0x2f
export const COLON = 0x3a
export const QUESTION = 0x3f
export const LBRACKET = 0x5b
export const RBRACKET = 0x5d
