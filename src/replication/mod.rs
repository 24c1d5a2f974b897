//! Replication with Redis's PSYNC protocol: the replica side ([`replica`]) follows a master
//! (cachette or redis-server), the primary side serves replicas.

pub mod replica;
