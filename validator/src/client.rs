//! The chain client: requests and queries to whichever validator answers, plus
//! the statements a farmer and a node sign to register the node.
//!
//! [`Chain`] holds one QUIC connection (ALPN `nodus/chain/1`) to the first of its
//! endpoints that answers and moves on to the next when a request fails or times
//! out. `nodus chain …`, the agent's chain client and `nodus devnet` all use it.
//! It retries nothing on its own: callers decide (the CLI gives up, the agent
//! backs off and tries again).
//!
//! ```no_run
//! # async fn f(key: nodus_identity::SecretKey, ep: nodus_validator::node::config::Endpoint)
//! # -> Result<(), nodus_validator::client::ClientError> {
//! use nodus_validator::{client::Chain, state::Address};
//!
//! let mut chain = Chain::new(&key, vec![ep])?;
//! let me = chain.account(Address::from(key.public())).await?;
//! println!("{} base units, next nonce {}", me.balance, me.next_nonce);
//! # Ok(()) }
//! ```

use std::time::Duration;

use nodus_identity::statement::purpose;
use nodus_identity::{SecretKey, Signed, Statement};
use nodus_wire::{Alpn, Client, Connection};

use crate::node::MAX_FRAME_LEN;
use crate::node::config::Endpoint;
use crate::rpc::{AccountInfo, Query, Request, Response, TxLocation};
use crate::state::farm::{Capacity, FarmApproval, FarmId, NodeRegistration};
use crate::state::reward::Farming;
use crate::state::tx::{SignedTx, TxStatus};
use crate::state::{Address, Hash};
use crate::{Tx, TxBody};

/// How long connecting to one endpoint, or one request on it, may take before
/// the next endpoint is tried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Between looks at a submitted transaction while waiting for its block.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Why a chain request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No endpoints were given.
    #[error("No chain endpoint given")]
    NoEndpoint,
    /// No endpoint answered; one reason per endpoint tried.
    #[error("No validator reachable: {0}")]
    Unreachable(String),
    /// A validator refused the request or answered something else.
    #[error("Validator answered: {0}")]
    Refused(String),
    /// A statement or transaction could not be signed.
    #[error("Cannot sign: {0}")]
    Sign(String),
    /// The transaction did not reach a block in time.
    #[error("Transaction {0} not in a block in time")]
    NotIncluded(String),
}

fn unexpected(r: &Response) -> ClientError {
    ClientError::Refused(format!("unexpected answer {r:?}"))
}

/// A connection to the first endpoint that answers.
pub struct Chain {
    client: Client,
    endpoints: Vec<Endpoint>,
    conn: Option<Connection>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("endpoints", &self.endpoints)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl Chain {
    /// A client that authenticates with `key` and talks to `endpoints` in turn.
    /// Must be called inside a tokio runtime.
    pub fn new(key: &SecretKey, endpoints: Vec<Endpoint>) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoint);
        }
        let mut client = Client::new(key).map_err(|e| ClientError::Unreachable(e.to_string()))?;
        client.set_max_frame_len(MAX_FRAME_LEN);
        Ok(Self {
            client,
            endpoints,
            conn: None,
        })
    }

    /// Sends a request, on the open connection if there is one, else trying each
    /// endpoint in turn until one answers.
    pub async fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        let mut errors = Vec::new();
        if let Some(conn) = &self.conn {
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.request::<_, Response>(req)).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => errors.push(format!("{}: {e}", conn.remote_address())),
                Err(_) => errors.push(format!("{}: timed out", conn.remote_address())),
            }
            self.conn = None;
        }
        for ep in &self.endpoints {
            let conn = match tokio::time::timeout(
                REQUEST_TIMEOUT,
                self.client.connect(ep.addr, ep.key, Alpn::Chain),
            )
            .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    errors.push(format!("{ep}: {e}"));
                    continue;
                }
                Err(_) => {
                    errors.push(format!("{ep}: timed out"));
                    continue;
                }
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.request::<_, Response>(req)).await {
                Ok(Ok(r)) => {
                    self.conn = Some(conn);
                    return Ok(r);
                }
                Ok(Err(e)) => errors.push(format!("{ep}: {e}")),
                Err(_) => errors.push(format!("{ep}: timed out")),
            }
        }
        Err(ClientError::Unreachable(errors.join("; ")))
    }

    /// Runs a query; a refusal becomes [`ClientError::Refused`].
    pub async fn query(&mut self, q: Query) -> Result<Response, ClientError> {
        match self.request(&Request::Query(q)).await? {
            Response::Error(e) => Err(ClientError::Refused(e.to_string())),
            r => Ok(r),
        }
    }

    /// The chain id (every signature names it).
    pub async fn chain_id(&mut self) -> Result<String, ClientError> {
        match self.query(Query::Height).await? {
            Response::Height(h) => Ok(h.chain_id),
            other => Err(unexpected(&other)),
        }
    }

    /// An account's balance, nonces and stake.
    pub async fn account(&mut self, a: Address) -> Result<AccountInfo, ClientError> {
        match self.query(Query::Account(a)).await? {
            Response::Account(i) => Ok(i),
            other => Err(unexpected(&other)),
        }
    }

    /// A node's uptime and rewards; `None` if it is not registered.
    pub async fn farming(&mut self, node: Address) -> Result<Option<Farming>, ClientError> {
        match self.query(Query::Farming(node)).await? {
            Response::Farming(f) => Ok(f),
            other => Err(unexpected(&other)),
        }
    }

    /// Signs `body` with `key` at the account's next nonce and submits it;
    /// returns the transaction id.
    pub async fn sign_and_submit(
        &mut self,
        key: &SecretKey,
        fee: crate::state::Amount,
        body: TxBody,
    ) -> Result<Hash, ClientError> {
        let chain_id = self.chain_id().await?;
        let nonce = self.account(Address::from(key.public())).await?.next_nonce;
        let tx = Tx { nonce, fee, body }
            .sign(&chain_id, key)
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        self.submit(tx).await
    }

    /// Submits one signed transaction to the mempool; returns its id.
    pub async fn submit(&mut self, tx: SignedTx) -> Result<Hash, ClientError> {
        match self.request(&Request::Submit(vec![tx])).await? {
            Response::Submitted(mut v) => match v.pop() {
                Some(Ok(id)) => Ok(id),
                Some(Err(e)) => Err(ClientError::Refused(format!("Transaction refused: {e}"))),
                None => Err(ClientError::Refused("empty answer".into())),
            },
            Response::Error(e) => Err(ClientError::Refused(e.to_string())),
            other => Err(unexpected(&other)),
        }
    }

    /// Waits until transaction `id` is in a block; returns the height and what
    /// happened to it.
    pub async fn wait_included(
        &mut self,
        id: Hash,
        timeout: Duration,
    ) -> Result<(u64, TxStatus), ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Response::Tx(TxLocation::Included { height, status }) =
                self.query(Query::Tx(id)).await?
            {
                return Ok((height, status));
            }
            if tokio::time::Instant::now() >= deadline {
                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                return Err(ClientError::NotIncluded(hex));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// The farm owner's offline approval of `node` for `farm` (what
/// `nodus chain tx approve-node` prints and a node registers with).
pub fn approve_node(
    farmer: &SecretKey,
    chain_id: &str,
    farm: FarmId,
    node: Address,
) -> Result<Signed<FarmApproval>, ClientError> {
    Statement::new(
        purpose::FARM_APPROVAL,
        chain_id,
        farmer.public(),
        None,
        FarmApproval { farm, node },
    )
    .sign(farmer)
    .map_err(|e| ClientError::Sign(e.to_string()))
}

/// The node-registration transaction body: the node's own signed statement plus
/// the farm owner's approval.
pub fn register_node(
    node: &SecretKey,
    chain_id: &str,
    approval: Signed<FarmApproval>,
    capacity: Capacity,
) -> Result<TxBody, ClientError> {
    let registration = Statement::new(
        purpose::NODE_REGISTRATION,
        chain_id,
        node.public(),
        None,
        NodeRegistration {
            farm: approval.statement.payload.farm,
            capacity,
        },
    )
    .sign(node)
    .map_err(|e| ClientError::Sign(e.to_string()))?;
    Ok(TxBody::RegisterNode {
        registration: Box::new(registration),
        approval: Box::new(approval),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_names_the_approved_farm_and_both_signers() {
        let farmer = SecretKey::from_seed(&[1; 32]);
        let node = SecretKey::from_seed(&[2; 32]);
        let approval = approve_node(&farmer, "t", 7, Address::from(node.public())).unwrap();
        assert_eq!(approval.statement.signer, farmer.public());
        let body = register_node(&node, "t", approval, Capacity::default()).unwrap();
        let TxBody::RegisterNode {
            registration,
            approval,
        } = body
        else {
            panic!("not a registration");
        };
        assert_eq!(registration.statement.payload.farm, 7);
        assert_eq!(registration.statement.signer, node.public());
        assert_eq!(registration.statement.network, "t");
        assert_eq!(
            approval.statement.payload.node,
            Address::from(node.public())
        );
    }

    #[test]
    fn no_endpoint_is_refused() {
        let key = SecretKey::from_seed(&[3; 32]);
        assert_eq!(
            Chain::new(&key, Vec::new()).unwrap_err(),
            ClientError::NoEndpoint
        );
    }
}
