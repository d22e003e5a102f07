/** Letters and digits of any script: everything else (punctuation, `_`, `.`, `/`) separates words. */
const WORD = /[\p{L}\p{N}]+/gu;
/** camelCase / PascalCase / ACRONYMCase parts: getUserByID → get, User, By, ID. */
const PART = /\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+/gu;
/** Words that have parts at all: a case change or a letter/digit boundary. */
const HAS_PARTS = /\p{Ll}\p{Lu}|\p{Lu}\p{Lu}\p{Ll}|\p{L}\p{N}|\p{N}\p{L}/u;

const MAX_WORD_CHARS = 100;
/** tsvector holds at most 1 MB; stay well below (a lexeme costs its bytes plus ~4). */
const MAX_INDEX_BYTES = 800_000;
/** Text scanned for words per file. */
const MAX_SCANNED_CHARS = 2_000_000;

/**
 * The search words of a text, as lexemes for `array_to_tsvector`: each word lowercased, and for
 * identifiers also their camelCase parts (`getUserById` → getuserbyid, get, user, by, id).
 * `this.state`, `user_id` and `src/app.ts` split at the punctuation. Bounded in size.
 */
export function codeWords(text: string): string[] {
  const words = new Set<string>();
  let bytes = 0;
  const add = (w: string) => {
    if (w.length > MAX_WORD_CHARS || words.has(w)) return;
    words.add(w);
    bytes += Buffer.byteLength(w) + 4;
  };
  const seen = new Set<string>();
  for (const [word] of text.slice(0, MAX_SCANNED_CHARS).matchAll(WORD)) {
    if (bytes > MAX_INDEX_BYTES) break;
    if (seen.has(word)) continue; // code repeats itself a lot
    seen.add(word);
    add(word.toLowerCase());
    if (HAS_PARTS.test(word)) for (const p of word.match(PART)!) add(p.toLowerCase());
  }
  return [...words];
}

/**
 * The words of a search query, lowercased, in order, without repeats (at most 16): what
 * {@link codeWords} would have produced for the same text, minus the camelCase parts.
 */
export function queryWords(query: string): string[] {
  return [...new Set(query.toLowerCase().match(WORD) ?? [])]
    .filter((w) => w.length <= MAX_WORD_CHARS)
    .slice(0, 16);
}

/**
 * A tsquery (in its input syntax, for a `::tsquery` cast: no parser, no dictionary) requiring
 * every word, the last one as a prefix (as you type): `'get' & 'us':*`.
 */
export function prefixQuery(words: string[]): string {
  return words.map((w, i) => `'${w}'${i === words.length - 1 ? ':*' : ''}`).join(' & ');
}
