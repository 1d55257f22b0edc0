//! Getting builds to machines: the channel repository commands ([`channel`]: `keygen`,
//! `init-repo`, `payload`, `publish`, `promote`; [`disk_image`]: a release's compressed disk
//! image; [`serve`] serves a repository over HTTP for local use), a channel's Vagrant box
//! catalog ([`vagrant`]) and AWS ([`ami`]: snapshot upload and AMI registration).

pub mod ami;
pub mod channel;
pub mod disk_image;
pub mod serve;
pub mod vagrant;
