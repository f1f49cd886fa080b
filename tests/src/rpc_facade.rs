//! A JSON-RPC endpoint in front of the embedded bank, speaking the subset of the Solana RPC API
//! the client's `RpcChain` uses. It lets the tests run the keeper and `pm bootstrap` through
//! the real RPC client (HTTP, JSON encodings, error mapping) without a validator.
//!
//! `getProgramAccounts` cannot enumerate the bank: it filters the accounts it has been told
//! about (`watch`).

use anchor_lang::prelude::Pubkey;
use base64::Engine;
use pm_client::local_bank::LocalBank;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

/// The embedded bank behind the endpoint, and the accounts `getProgramAccounts` may return.
pub struct Facade {
    pub bank: Mutex<LocalBank>,
    pub watched: Mutex<Vec<Pubkey>>,
}

impl Facade {
    /// Adds accounts `getProgramAccounts` may return.
    pub async fn watch(&self, keys: &[Pubkey]) {
        let mut watched = self.watched.lock().await;
        for key in keys {
            if !watched.contains(key) {
                watched.push(*key);
            }
        }
    }
}

/// Serves `facade` on a local port; returns the URL.
pub async fn serve(facade: Arc<Facade>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let facade = facade.clone();
            tokio::spawn(async move {
                let _ = connection(stream, facade).await;
            });
        }
    });
    format!("http://{address}")
}

async fn connection(mut stream: tokio::net::TcpStream, facade: Arc<Facade>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        // Read one request: headers, then Content-Length bytes of body.
        let header_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let headers = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
        let length = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
            .unwrap_or(0);
        while buffer.len() < header_end + length {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let body: Value = serde_json::from_slice(&buffer[header_end..header_end + length]).unwrap_or(Value::Null);
        buffer.drain(..header_end + length);
        let response = respond(&facade, &body).await.to_string();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", response.len());
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(response.as_bytes()).await?;
    }
}

fn encode_account(account: &solana_account::Account) -> Value {
    json!({
        "data": [base64::engine::general_purpose::STANDARD.encode(&account.data), "base64"],
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": account.owner.to_string(),
        "rentEpoch": account.rent_epoch,
        "space": account.data.len(),
    })
}

fn filter_matches(filter: &Value, data: &[u8]) -> bool {
    if let Some(size) = filter.get("dataSize").and_then(Value::as_u64) {
        return data.len() as u64 == size;
    }
    if let Some(memcmp) = filter.get("memcmp") {
        let offset = memcmp["offset"].as_u64().unwrap_or(0) as usize;
        let encoded = memcmp["bytes"].as_str().unwrap_or("");
        let bytes = match memcmp.get("encoding").and_then(Value::as_str) {
            Some("base64") => base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default(),
            _ => bs58::decode(encoded).into_vec().unwrap_or_default(),
        };
        return data.len() >= offset + bytes.len() && data[offset..offset + bytes.len()] == bytes[..];
    }
    false
}

async fn respond(facade: &Facade, request: &Value) -> Value {
    let id = request["id"].clone();
    let params = &request["params"];
    let mut bank = facade.bank.lock().await;
    let slot = bank.context.banks_client.get_root_slot().await.unwrap_or(0);
    let result = match request["method"].as_str().unwrap_or("") {
        "getVersion" => json!({"solana-core": "3.1.12", "feature-set": 0}),
        "getSlot" => {
            // Every slot query moves the bank forward, so waits for a new slot end.
            let _ = bank.context.warp_to_slot(slot + 1);
            json!(slot + 1)
        }
        "getLatestBlockhash" => {
            let hash = bank.context.banks_client.get_latest_blockhash().await.expect("blockhash");
            json!({"context": {"slot": slot}, "value": {"blockhash": hash.to_string(), "lastValidBlockHeight": slot + 150}})
        }
        "isBlockhashValid" => json!({"context": {"slot": slot}, "value": true}),
        "getAccountInfo" => {
            let key: Pubkey = params[0].as_str().unwrap_or("").parse().unwrap_or_default();
            let account = bank.context.banks_client.get_account(key).await.ok().flatten();
            json!({"context": {"slot": slot}, "value": account.as_ref().map(encode_account)})
        }
        "getProgramAccounts" => {
            let program: Pubkey = params[0].as_str().unwrap_or("").parse().unwrap_or_default();
            let filters = params[1]["filters"].as_array().cloned().unwrap_or_default();
            let mut out = Vec::new();
            for key in facade.watched.lock().await.iter() {
                let Some(account) = bank.context.banks_client.get_account(*key).await.ok().flatten() else { continue };
                if account.owner == program && filters.iter().all(|f| filter_matches(f, &account.data)) {
                    out.push(json!({"pubkey": key.to_string(), "account": encode_account(&account)}));
                }
            }
            if params[1]["withContext"].as_bool() == Some(true) {
                json!({"context": {"slot": slot}, "value": out})
            } else {
                json!(out)
            }
        }
        "sendTransaction" => {
            let raw = base64::engine::general_purpose::STANDARD.decode(params[0].as_str().unwrap_or("")).unwrap_or_default();
            let Ok(tx) = bincode::deserialize::<solana_transaction::versioned::VersionedTransaction>(&raw) else {
                return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "undecodable transaction"}});
            };
            let signature = tx.signatures[0].to_string();
            let outcome = bank.context.banks_client.process_transaction_with_metadata(tx).await;
            match outcome.map(|o| o.result) {
                Ok(Ok(())) => json!(signature),
                Ok(Err(err)) => {
                    return json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": -32002,
                        "message": format!("Transaction simulation failed: {err}"),
                        "data": {"err": serde_json::to_value(&err).unwrap_or(Value::Null), "logs": [], "accounts": null, "unitsConsumed": 0, "returnData": null, "innerInstructions": null, "replacementBlockhash": null, "loadedAccountsDataSize": null, "fee": null, "preBalances": null, "postBalances": null, "preTokenBalances": null, "postTokenBalances": null, "loadedAddresses": null}
                    }});
                }
                Err(e) => return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": e.to_string()}}),
            }
        }
        "getSignatureStatuses" => {
            let count = params[0].as_array().map(Vec::len).unwrap_or(0);
            let status = json!({"slot": slot, "confirmations": null, "err": null, "status": {"Ok": null}, "confirmationStatus": "finalized"});
            json!({"context": {"slot": slot}, "value": vec![status; count]})
        }
        other => return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("method {other} not served")}}),
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}
