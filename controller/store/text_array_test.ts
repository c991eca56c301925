import assert from "node:assert/strict";
import { parseTextArray, serializeTextArray } from "./text_array.ts";

Deno.test("parseTextArray() tells unquoted NULL from the string NULL", () => {
  assert.deepEqual(parseTextArray('{a,NULL,"NULL",""}'), ["a", null, "NULL", ""]);
});

Deno.test("parseTextArray() unescapes quoted elements", () => {
  assert.deepEqual(parseTextArray('{"b,c","q\\"t","x\\\\y","{}"," sp "}'), [
    "b,c",
    'q"t',
    "x\\y",
    "{}",
    " sp ",
  ]);
});

Deno.test("parseTextArray() reads empty, nested and lower-bound-prefixed arrays", () => {
  assert.deepEqual(parseTextArray("{}"), []);
  assert.deepEqual(parseTextArray("{{a,b},{NULL,d}}"), [["a", "b"], [null, "d"]]);
  assert.deepEqual(parseTextArray("[0:1]={a,b}"), ["a", "b"]);
});

Deno.test("parseTextArray() rejects malformed literals instead of guessing", () => {
  for (const bad of ["", "a,b", "{a", '{"a}', "{a}x"]) {
    assert.throws(() => parseTextArray(bad), /malformed text\[\] literal/, bad);
  }
});

Deno.test("serializeTextArray() round-trips through parseTextArray()", () => {
  const values = [["a", "b,c", 'q"t', "x\\y", "NULL", "", null, "{}"], [], [["a"], ["b"]]];
  for (const value of values) {
    assert.deepEqual(parseTextArray(serializeTextArray(value)), value);
  }
  assert.equal(serializeTextArray("{already}"), "{already}");
  assert.throws(() => serializeTextArray(["a", undefined]), /undefined element/);
});
