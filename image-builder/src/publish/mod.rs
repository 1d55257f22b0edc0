//! Getting builds to machines: the channel repository commands ([`channel`]: `keygen`,
//! `init-repo`, `payload`, `publish`, `promote`; [`serve`] serves a repository over HTTP for
//! local use), a channel's Vagrant box catalog ([`vagrant`]) and AWS ([`ami`]: snapshot upload
//! and AMI registration).

pub mod ami;
pub mod channel;
pub mod serve;
pub mod vagrant;
