/**
 * A rendered variable as a header value on the wire. nginx writes a value's bytes as they are:
 * text beyond Latin-1 (a decoded `%E4%B8%AD` in `$uri`) goes out as its UTF-8 bytes, which Node
 * takes as a Latin-1 string of those bytes (it would refuse the characters themselves). Control
 * characters are written as `%XX` instead of raw (deliberate: a CR or LF in a value would end the
 * header and let a client write headers of its own).
 */
const PLAIN = /^[\t\x20-\x7e]*$/

export function asHeaderValue (value: string): string {
  if (PLAIN.test(value)) return value
  const utf8 = /[^\x00-\xff]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value
  return utf8.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
}
