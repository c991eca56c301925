import assert from "node:assert/strict";
import { storableText, unprintable } from "./printable.ts";

Deno.test("unprintable names the first control or format character", () => {
  assert.equal(unprintable("web-01"), undefined);
  assert.equal(unprintable("a\u0000b"), "U+0000");
  assert.equal(unprintable("a\u202eb"), "U+202E");
});

Deno.test("storableText repairs, replaces control characters and cuts by code points", () => {
  assert.equal(storableText("echo\u0000 on n-1", 100), "echo\uFFFD on n-1");
  assert.equal(storableText("a\u001b[2Jb\r\n", 100), "a\uFFFD[2Jb\uFFFD\uFFFD");
  // A lone surrogate half (an emoji cut in two) becomes U+FFFD, never an invalid string.
  assert.equal(storableText("x\ud83d", 100), "x\uFFFD");
  // The cut never splits an emoji, and says it cut.
  assert.equal(storableText("ab\u{1F600}\u{1F600}", 3), "ab…");
  assert.equal(storableText("ab\u{1F600}", 3), "ab\u{1F600}");
  assert.equal(storableText(undefined, 10), "");
  assert.equal(storableText(42, 10), "42");
});
