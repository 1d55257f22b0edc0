//! Data that runs on the host: unit files, the minimal userland's files and the container host's
//! configuration. The programs have crates of their own under `host/`.
