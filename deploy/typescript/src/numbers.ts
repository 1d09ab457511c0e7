// numbers.ts -- ledger integers as JavaScript numbers.

/**
 * A bigint (or its decimal text, as pg returns int8 and numeric) as a
 * number; throws RangeError rather than round a value beyond
 * Number.MAX_SAFE_INTEGER. Every amount and sum of the ledger fits.
 */
export function toSafeNumber(value: bigint | number | string): number {
    const n = typeof value === "number" ? value : Number(value);
    if (!Number.isSafeInteger(n) || (typeof value === "bigint" && BigInt(n) !== value))
        throw new RangeError(`${String(value)} is not an integer within Number.MAX_SAFE_INTEGER`);
    return n;
}
