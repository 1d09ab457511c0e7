// vectors.ts -- reads the contract's test vectors (schemas/vectors/).
// CREDITS_VECTORS_DIR overrides where they are read from.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { ExtData } from "@msgpack/msgpack";

// dist/test/vectors.js -> the repository's schemas/vectors/.
const vectorsDir = process.env.CREDITS_VECTORS_DIR
    ? pathToFileURL(`${process.env.CREDITS_VECTORS_DIR.replace(/\/$/, "")}/`)
    : new URL("../../../../schemas/vectors/", import.meta.url);

export function readTsv(name: string, columns: string[]): Record<string, string>[] {
    const text = readFileSync(new URL(name, vectorsDir), "utf8");
    const lines = text.split("\n");
    assert.equal(lines.pop(), "", `${name} ends with a newline`);
    assert.deepEqual(lines[0]?.split("\t"), columns, `${name} header`);
    return lines.slice(1).map((line, i) => {
        const cells = line.split("\t");
        assert.equal(cells.length, columns.length, `${name} line ${i + 2} has ${columns.length} columns`);
        return Object.fromEntries(columns.map((c, j) => [c, cells[j] ?? ""]));
    });
}

/**
 * The `meaning` column as a value. It is JSON plus notes: `5 (uint32)` (an
 * integer's encoding), `<bin "...">` and `<fixextN type T>`; those become
 * {$bin: "..."} and {$ext: T, size: N}. Anything else fails the parse,
 * so a new kind of note cannot pass unnoticed.
 */
export function parseMeaning(meaning: string): unknown {
    const json = meaning
        .replace(/(-?[0-9]+) \((?:u?int(?:8|16|32|64)|fixint)\)/g, "$1")
        .replace(/<bin "((?:[^"\\]|\\.)*)">/g, (_, s: string) => JSON.stringify({ $bin: JSON.parse(`"${s}"`) }))
        .replace(/<fixext([0-9]+) type (-?[0-9]+)>/g, (_, n: string, t: string) =>
            JSON.stringify({ $ext: Number(t), size: Number(n) }));
    return JSON.parse(json);
}

/** A decoded msgpack value in the form parseMeaning gives. */
export function normalize(x: unknown): unknown {
    if (x instanceof ExtData) return { $ext: x.type, size: x.data.length };
    if (x instanceof Uint8Array) return { $bin: String.fromCharCode(...x) };
    if (Array.isArray(x)) return x.map(normalize);
    if (x !== null && typeof x === "object")
        return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, normalize(v)]));
    return x;
}

/** The inverse of normalize: a value to encode. */
export function denormalize(x: unknown): unknown {
    if (Array.isArray(x)) return x.map(denormalize);
    if (x !== null && typeof x === "object") {
        const o = x as Record<string, unknown>;
        if (typeof o.$bin === "string") return Uint8Array.from(o.$bin, (c) => c.charCodeAt(0));
        if (typeof o.$ext === "number") return new ExtData(o.$ext, new Uint8Array(Number(o.size)));
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, denormalize(v)]));
    }
    return x;
}

