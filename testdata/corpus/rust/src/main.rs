use std::env;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

const DO_TOKEN: &str = "dop_v1_dae0dd7ecb17e7b587d632448c4c033d1e3aae23e97a150c7cf5434208351f86";
const API_BASE: &str = "https://api.digitalocean.com/v2";

#[derive(Debug, serde::Deserialize)]
struct Droplet {
    id: u64,
    name: String,
    status: String,
}

fn client() -> reqwest::Result<reqwest::blocking::Client> {
    let token = env::var("DIGITALOCEAN_TOKEN").unwrap_or_else(|_| DO_TOKEN.to_string());
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(20))
        .build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hf_token = env::var("HF_TOKEN").ok();
    let tokenizer_path = env::var("TOKENIZER_PATH").unwrap_or_else(|_| "tokenizer.json".into());
    println!("tokenizer at {tokenizer_path}, hf token set: {}", hf_token.is_some());
    let droplets: serde_json::Value = client()?.get(format!("{API_BASE}/droplets")).send()?.json()?;
    println!("{droplets:#}");
    Ok(())
}
