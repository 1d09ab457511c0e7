// pgconfig.ts -- turns CREDITS_DATABASE_URL (a libpq URI or a key=value
// conninfo string, as the worker takes it) into a config for the `pg`
// package, which only parses URIs. The web app normally has its own database
// settings; the example and the test use the worker's.

import type { ClientConfig } from "pg";

const KEYS: Record<string, keyof ClientConfig> = {
    host: "host",
    hostaddr: "host",
    port: "port",
    user: "user",
    password: "password",
    dbname: "database",
    application_name: "application_name",
    connect_timeout: "connectionTimeoutMillis",
};

export function pgConfig(conninfo: string | undefined): ClientConfig {
    const text = (conninfo ?? "").trim();
    if (/^postgres(ql)?:\/\//.test(text)) return { connectionString: text };
    const config: Record<string, unknown> = {};
    // key = value pairs; a value may be single-quoted, with \' and \\ escapes.
    const re = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']*))\s*/y;
    let at = 0;
    while (at < text.length) {
        re.lastIndex = at;
        const m = re.exec(text);
        if (!m) throw new Error(`cannot parse the PostgreSQL conninfo string at offset ${at}`);
        at = re.lastIndex;
        const key = m[1] ?? "";
        const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
        const field = KEYS[key];
        if (field === "port") config.port = Number(value);
        else if (field === "connectionTimeoutMillis") config.connectionTimeoutMillis = Number(value) * 1000;
        else if (field) config[field] = value;
        // Other keys (sslmode, options, ...) are left to pg's defaults here.
    }
    return config as ClientConfig;
}
