// msgpack-shape.ts -- reads the top level of an encoded job byte by byte, so
// that the tests can check what a msgpack library would hide: each key
// once, every key a str, every integer an int (never a float), no nil.

import assert from "node:assert/strict";

export interface TopLevelKey {
    key: string;
    /** The msgpack family of the value: "int", "str", "bool". */
    value: "int" | "str" | "bool";
}

export function topLevelKeys(bytes: Uint8Array): TopLevelKey[] {
    let at = 0;
    const u8 = () => bytes[at++] ?? assert.fail("truncated");
    const strLen = (b: number): number | null => {
        if (b >= 0xa0 && b <= 0xbf) return b & 0x1f;
        if (b === 0xd9) return u8();
        if (b === 0xda) return (u8() << 8) | u8();
        return null;
    };
    const head = u8();
    let count: number;
    if (head >= 0x80 && head <= 0x8f) count = head & 0x0f;
    else if (head === 0xde) count = (u8() << 8) | u8();
    else assert.fail(`a job must be a map, got type byte ${head.toString(16)}`);
    const keys: TopLevelKey[] = [];
    for (let i = 0; i < count; i++) {
        const kb = u8();
        const klen = strLen(kb);
        if (klen === null) assert.fail(`key ${i} is not a str (type byte ${kb.toString(16)})`);
        const key = Buffer.from(bytes.subarray(at, at + klen)).toString("utf8");
        at += klen;
        const vb = u8();
        const slen = strLen(vb);
        let value: TopLevelKey["value"];
        if (slen !== null) { at += slen; value = "str"; }
        else if (vb === 0xc2 || vb === 0xc3) value = "bool";
        else if (vb <= 0x7f || vb >= 0xe0) value = "int";
        else if (vb === 0xcc || vb === 0xd0) { at += 1; value = "int"; }
        else if (vb === 0xcd || vb === 0xd1) { at += 2; value = "int"; }
        else if (vb === 0xce || vb === 0xd2) { at += 4; value = "int"; }
        else if (vb === 0xcf || vb === 0xd3) { at += 8; value = "int"; }
        else assert.fail(`key ${key}: a value of type byte ${vb.toString(16)} (float, nil, bin or container)`);
        keys.push({ key, value });
    }
    assert.equal(at, bytes.length, "no bytes after the map");
    return keys;
}
