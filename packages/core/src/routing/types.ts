/**
 * The shapes the routing modules work on. Kept free of Fastify and of the config resolver so
 * location and server selection can be tested as pure functions.
 */

/** nginx's location modifiers, by name. */
export type LocationKind =
  | 'exact'           // = /path
  | 'prefix'          // /path
  | 'prefix-noregex'  // ^~ /path
  | 'regex'           // ~ re
  | 'regex-i'         // ~* re
  | 'named'           // @name

/** A location as the tree sees it. `T` is whatever the caller attaches (the resolved location). */
export interface LocationNode {
  kind: LocationKind
  /** The path for exact and prefix kinds, the regex source for regex kinds, `@name` for named. */
  path: string
  /** Compiled for regex kinds. */
  regex?: RegExp
  /** Nested locations. */
  children: LocationNode[]
}

export interface LocationMatch<T extends LocationNode = LocationNode> {
  location: T
  /** The match of the regex location that was selected (for $1..$9 and named groups), else null. */
  captures: RegExpExecArray | null
}

/**
 * One location nginx's algorithm considered, in order (`proxyctl explain`): `exact` and `prefix`
 * steps name the exact match and each level's longest prefix; `regex` each regex tried, matched
 * or not; `regexes-skipped` the level's regexes not tried because `node`, a `^~` prefix, stopped them.
 */
export interface LocationStep<T extends LocationNode = LocationNode> {
  kind: 'exact' | 'prefix' | 'regex' | 'regexes-skipped'
  node: T
  matched: boolean
}
