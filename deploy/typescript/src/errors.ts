// errors.ts -- what the client throws. A decision of the worker (applied,
// or rejected with an error code such as insufficient_credits) is a result,
// not an exception; these are the cases where no decision is in hand.

/** Base class: `instanceof CreditsError` catches every error of this package. */
export class CreditsError extends Error {
    override name = "CreditsError";
}

/** The request breaks a contract rule. Nothing was sent. */
export class CreditsValidationError extends CreditsError {
    override name = "CreditsValidationError";
    /** The field at fault, as the contract names it (`amount`, `id`, `payment_ref`...). */
    readonly field: string;
    constructor(field: string, message: string) {
        super(message);
        this.field = field;
    }
}

/**
 * No decision arrived within the time allowed. The job was sent: it stays on
 * its stream and may still be applied later. Find out with
 * `getResult(jobId)` (null until it is decided), or send the same job again
 * under the same idempotency key, which never applies it twice.
 */
export class CreditsTimeoutError extends CreditsError {
    override name = "CreditsTimeoutError";
    /**
     * `sent` is false only when the time ran out before the job could be
     * sent (Redis did not answer): then nothing was sent.
     */
    constructor(readonly jobId: string, readonly timeoutMs: number, readonly sent = true) {
        super(sent
            ? `no decision for job ${jobId} within ${timeoutMs} ms: it is queued and may still be applied ` +
              `later; read getResult(${JSON.stringify(jobId)}) to find out, or send the same job again with ` +
              "the same idempotency key (it is never applied twice)"
            : `job ${jobId} was not sent within ${timeoutMs} ms (Redis did not answer in time): send it again`);
    }
}

/**
 * The caller's AbortSignal fired. When `sent` is true the job had already
 * been added to its stream and may still be applied (see CreditsTimeoutError
 * for how to find out); when false nothing was sent.
 */
export class CreditsAbortError extends CreditsError {
    override name = "CreditsAbortError";
    constructor(readonly jobId: string, readonly sent: boolean, options?: { cause?: unknown }) {
        super(sent
            ? `stopped waiting for job ${jobId}: it was sent and may still be applied; ` +
              `read getResult(${JSON.stringify(jobId)}) to find out`
            : `job ${jobId} was not sent: the wait was aborted first`, options);
    }
}

/**
 * The job ID was already used by a job with other fields. The worker
 * refused this job (`id_conflict`): nothing was applied for it, and the ID's
 * stored result belongs to the other job. Use a new idempotency key for a
 * new request.
 */
export class CreditsIdConflictError extends CreditsError {
    override name = "CreditsIdConflictError";
    constructor(readonly jobId: string, readonly result: unknown) {
        super(`job ID ${jobId} was already used by a job with other fields (id_conflict): ` +
            "nothing was applied for this request; use a new idempotency key");
    }
}

/**
 * The worker refused the message itself: `invalid_job`,
 * `unsupported_version` or `wrong_stream`. Nothing was applied and nothing
 * was stored under the ID (a corrected job may reuse it). The client checks
 * every rule before sending, so this means the worker and the client
 * disagree: a worker older than the job type (its message then says
 * "field 'type' must be one of ..."), or ID prefixes that do not match the
 * worker's CREDITS_ID_PREFIXES.
 */
export class CreditsJobRefusedError extends CreditsError {
    override name = "CreditsJobRefusedError";
    constructor(readonly jobId: string, readonly error: "invalid_job" | "unsupported_version" | "wrong_stream",
        readonly workerMessage: string, readonly result: unknown) {
        super(`the worker refused job ${jobId} as ${error}: ${workerMessage}`);
    }
}

/** Bytes from Redis that are not a result of this contract (or an integer JavaScript cannot hold exactly). */
export class CreditsProtocolError extends CreditsError {
    override name = "CreditsProtocolError";
}

/** The client was closed while the call waited. */
export class CreditsClosedError extends CreditsError {
    override name = "CreditsClosedError";
    constructor(readonly jobId: string) {
        super(`the client was closed while waiting for job ${jobId}; it may still be applied`);
    }
}
