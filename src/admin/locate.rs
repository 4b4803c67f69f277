//! `memsessionctl locate USER`: which servers of a farm hold the epochs a session of USER is
//! checked against. Every server keeps its own copy of the global epoch and of each user's
//! epoch (README "Keys in memcached"), so a copy missing or behind on one server is what an
//! administrator looks for after a revocation that reported a missed server.

use super::{failure, one_line, server_error, Outcome, Target, EXIT_OK, EXIT_STORE};
use crate::metrics::json_string;
use crate::session_store::{GlobalCopy, SessionStore};

/// What one server holds for the user, as read now.
enum Copies {
    Unreachable(String),
    Read {
        user_epoch: bool,
        /// `None`: no global epoch copy; else its revocation generation.
        global_generation: Option<u64>,
    },
}

pub fn locate(store: &SessionStore, target: &Target, json: bool, user: &str) -> Outcome {
    const COMMAND: &str = "locate";
    let Some(deriver) = store.derivers().next() else {
        return failure(json, COMMAND, EXIT_STORE, "no key derivation");
    };
    let user_key = deriver.user_epoch_key(user);
    let keys = [user_key.as_str(), store.global_epoch_key()];
    let client = store.client();
    let copies: Vec<Copies> = (0..client.servers().len())
        .map(|server| match client.get_multi_on(server, &keys) {
            Err(error) => {
                Copies::Unreachable(one_line(&server_error(&target.servers[server], &error)))
            }
            Ok(values) => Copies::Read {
                user_epoch: values[0].is_some(),
                global_generation: values[1]
                    .as_deref()
                    .map(|v| GlobalCopy::parse(Some(v)).map_or(0, |c| c.generation)),
            },
        })
        .collect();
    let code = if copies.iter().any(|c| matches!(c, Copies::Unreachable(_))) {
        EXIT_STORE
    } else {
        EXIT_OK
    };
    let mut out = Outcome {
        code,
        ..Outcome::default()
    };
    if json {
        let servers: Vec<String> = target
            .servers
            .iter()
            .zip(&copies)
            .map(|(address, copy)| server_json(&address.to_string(), copy))
            .collect();
        out.stdout = format!(
            "{{\"command\":\"{COMMAND}\",\"ok\":{},\"exit\":{code},\"user\":{},\
             \"servers\":[{}]}}\n",
            code == EXIT_OK,
            json_string(user),
            servers.join(",")
        );
        return out;
    }
    out.stdout = format!("user: {}\n", one_line(user));
    for (address, copy) in target.servers.iter().zip(&copies) {
        match copy {
            Copies::Unreachable(error) => out.stderr.push_str(&format!("memsessionctl: {error}\n")),
            Copies::Read {
                user_epoch,
                global_generation,
            } => out.stdout.push_str(&format!(
                "{address}: {}, {}\n",
                if *user_epoch {
                    "user epoch present"
                } else {
                    "no user epoch (no session of this user was created here since the \
                     server started empty; the next one creates it)"
                },
                match global_generation {
                    Some(generation) =>
                        format!("global epoch at revocation generation {generation}"),
                    None => "no global epoch".to_string(),
                }
            )),
        }
    }
    out
}

fn server_json(address: &str, copy: &Copies) -> String {
    match copy {
        Copies::Unreachable(error) => format!(
            "{{\"server\":{},\"answered\":false,\"error\":{}}}",
            json_string(address),
            json_string(error)
        ),
        Copies::Read {
            user_epoch,
            global_generation,
        } => format!(
            "{{\"server\":{},\"answered\":true,\"user_epoch\":{user_epoch},\
             \"global_epoch\":{},\"generation\":{}}}",
            json_string(address),
            global_generation.is_some(),
            global_generation.map_or("null".to_string(), |g| g.to_string())
        ),
    }
}
