/** The version both binaries report; bumped with each release. */
export const VERSION = "0.1.0";
