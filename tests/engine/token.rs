//! Signed identities without sockets: published JWS vectors, tokens minted
//! here with jsonwebtoken's encoder and the test keys in `tests/data/auth/`,
//! one refusal per check, and the token's places in the request.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use roomd::protocol::http::{Parsed, parse_request};
use roomd::protocol::token::{
    Identity, Key, MAX_TOKEN_BYTES, Refusal, TokenConfig, TokenSource, Verifier, token_of,
    without_token,
};
use serde_json::{Value, json};

/// The tests' `now`: the fuzz target's, so that the seeds minted here are
/// valid there.
const NOW: u64 = roomd::fuzzing::TOKEN_NOW;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/auth/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config() -> TokenConfig {
    TokenConfig {
        audience: Some("roomd".into()),
        issuer: Some("https://id.example".into()),
        ..TokenConfig::default()
    }
}

/// A verifier with every test key, each named by its file's stem.
fn verifier() -> Verifier {
    let keys = vec![
        Key::secret(Some("hs256".into()), &data("hs256.secret")).unwrap(),
        Key::public_pem(Some("es256".into()), &data("es256.pub.pem")).unwrap(),
        Key::public_pem(Some("ed25519".into()), &data("ed25519.pub.pem")).unwrap(),
        Key::public_pem(Some("rs256".into()), &data("rs256.pub.pem")).unwrap(),
    ];
    Verifier::new(keys, config())
}

/// Good claims for [`NOW`], each of `edits` set (`Some`) or removed
/// (`None`).
fn claims(edits: &[(&str, Option<Value>)]) -> Value {
    let mut claims = json!({
        "sub": "alice",
        "exp": NOW + 600,
        "iat": NOW,
        "iss": "https://id.example",
        "aud": "roomd",
    });
    let map = claims.as_object_mut().unwrap();
    for (name, value) in edits {
        match value {
            Some(v) => map.insert(name.to_string(), v.clone()),
            None => map.remove(*name),
        };
    }
    claims
}

fn signing_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::HS256 => EncodingKey::from_secret(&data("hs256.secret")).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&data("es256.key.pem")).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&data("ed25519.key.pem")).unwrap(),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&data("rs256.key.pem")).unwrap(),
        other => panic!("no test key for {other:?}"),
    }
}

fn mint_with(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

fn mint(alg: Algorithm, claims: &Value) -> String {
    mint_with(&Header::new(alg), claims, &signing_key(alg))
}

fn good() -> String {
    mint(Algorithm::ES256, &claims(&[]))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---- published vectors -------------------------------------------------

const RFC7515_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// RFC 7515 A.1: HS256 with the JWK `k` of the appendix.
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const A1_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// RFC 7515 A.2: RS256.
const A2_SIGNATURE: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

/// RFC 7515 A.3: ES256 (`R || S`).
const A3_SIGNATURE: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

/// RFC 8037 A.4: EdDSA (Ed25519) over "Example of Ed25519 signing".
const A4_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
const A4_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

/// Checks a signature with jsonwebtoken's lower-level verifier (the one
/// [`Verifier`] calls), then the same with one bit of the input changed.
fn assert_signature(alg: Algorithm, key: &DecodingKey, signing_input: &str, signature: &str) {
    let ok = jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), key, alg);
    assert_eq!(ok, Ok(true), "{alg:?}");
    let mut tampered = signing_input.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let bad = jsonwebtoken::crypto::verify(signature, &tampered, key, alg);
    assert_eq!(bad, Ok(false), "{alg:?} tampered");
}

fn split_signature(token: &str) -> (&str, &str) {
    token.rsplit_once('.').unwrap()
}

#[test]
fn rfc7515_a1_hs256() {
    let k = URL_SAFE_NO_PAD.decode(A1_K).unwrap();
    let (input, signature) = split_signature(A1_TOKEN);
    assert_signature(
        Algorithm::HS256,
        &DecodingKey::from_secret(&k).unwrap(),
        input,
        signature,
    );
    // Through the whole verifier: the signature passes, the vector has no
    // `sub` (and no `aud`/`iss`), so the claims are what refuse it.
    let verifier = Verifier::new(vec![Key::secret(None, &k).unwrap()], TokenConfig::default());
    assert_eq!(
        verifier.verify(A1_TOKEN, 1_300_819_000),
        Err(Refusal::Subject)
    );
    // Its `exp` is 1300819380; the default leeway is 30 s.
    assert_eq!(
        verifier.verify(A1_TOKEN, 1_300_819_409),
        Err(Refusal::Subject)
    );
    assert_eq!(
        verifier.verify(A1_TOKEN, 1_300_819_410),
        Err(Refusal::Expired)
    );
}

#[test]
fn rfc7515_a2_rs256() {
    let key = DecodingKey::from_rsa_components(A2_N, "AQAB").unwrap();
    let input = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD}");
    assert_signature(Algorithm::RS256, &key, &input, A2_SIGNATURE);
}

/// A SubjectPublicKeyInfo PEM: `prefix` (the DER up to the key bits) and
/// the raw public key.
fn spki_pem(prefix_hex: &str, raw: &[u8]) -> Vec<u8> {
    let mut der: Vec<u8> = (0..prefix_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&prefix_hex[i..i + 2], 16).unwrap())
        .collect();
    der.extend_from_slice(raw);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
    .into_bytes()
}

#[test]
fn rfc7515_a3_es256() {
    let key = DecodingKey::from_ec_components(A3_X, A3_Y).unwrap();
    let input = format!("eyJhbGciOiJFUzI1NiJ9.{RFC7515_PAYLOAD}");
    assert_signature(Algorithm::ES256, &key, &input, A3_SIGNATURE);
    // The same key as PEM, through the whole verifier.
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(A3_X).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(A3_Y).unwrap());
    let pem = spki_pem(
        "3059301306072a8648ce3d020106082a8648ce3d030107034200",
        &point,
    );
    let verifier = Verifier::new(
        vec![Key::public_pem(None, &pem).unwrap()],
        TokenConfig::default(),
    );
    let token = format!("{input}.{A3_SIGNATURE}");
    assert_eq!(
        verifier.verify(&token, 1_300_819_000),
        Err(Refusal::Subject)
    );
    let forged = format!("{input}.{}", A3_SIGNATURE.replace('D', "E"));
    assert_eq!(
        verifier.verify(&forged, 1_300_819_000),
        Err(Refusal::Signature)
    );
}

#[test]
fn rfc8037_a4_eddsa() {
    let key = DecodingKey::from_ed_components(A4_X).unwrap();
    let (input, signature) = split_signature(A4_TOKEN);
    assert_signature(Algorithm::EdDSA, &key, input, signature);
    // As PEM, through the whole verifier: the signature passes, and the
    // payload (plain text, not claims) is what refuses it.
    let raw = URL_SAFE_NO_PAD.decode(A4_X).unwrap();
    let pem = spki_pem("302a300506032b6570032100", &raw);
    let verifier = Verifier::new(
        vec![Key::public_pem(None, &pem).unwrap()],
        TokenConfig::default(),
    );
    assert_eq!(verifier.verify(A4_TOKEN, NOW), Err(Refusal::Malformed));
    let forged = A4_TOKEN.replace(
        "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
        &b64(b"Example of Ed25519 signinG"),
    );
    assert_eq!(verifier.verify(&forged, NOW), Err(Refusal::Signature));
}

// ---- tokens minted here: what passes -----------------------------------

#[test]
fn every_algorithm_with_its_key_passes() {
    let v = verifier();
    for alg in [
        Algorithm::HS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::RS256,
    ] {
        let token = mint(alg, &claims(&[("rooms", Some(json!(["lobby", "team-*"])))]));
        let id = v
            .verify(&token, NOW)
            .unwrap_or_else(|r| panic!("{alg:?}: {r}"));
        assert_eq!(
            id,
            Identity {
                sub: "alice".into(),
                exp: NOW + 600,
                rooms: Some(vec!["lobby".into(), "team-*".into()]),
            }
        );
        assert!(id.may_enter("team-red") && !id.may_enter("kitchen"));
    }
}

#[test]
fn kid_picks_the_key_and_an_unknown_kid_falls_back_to_the_algorithm() {
    let v = verifier();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rs256".into());
    let token = mint_with(&header, &claims(&[]), &signing_key(Algorithm::RS256));
    assert!(v.verify(&token, NOW).is_ok());
    header.kid = Some("rotated-away".into());
    let token = mint_with(&header, &claims(&[]), &signing_key(Algorithm::RS256));
    assert!(v.verify(&token, NOW).is_ok());
    // A kid naming a key of another algorithm: the key decides.
    header.kid = Some("es256".into());
    let token = mint_with(&header, &claims(&[]), &signing_key(Algorithm::RS256));
    assert_eq!(v.verify(&token, NOW), Err(Refusal::Algorithm));
}

#[test]
fn no_audience_or_issuer_configured_checks_none() {
    let keys = vec![Key::public_pem(None, &data("es256.pub.pem")).unwrap()];
    let v = Verifier::new(keys, TokenConfig::default());
    let token = mint(
        Algorithm::ES256,
        &claims(&[("iss", None), ("aud", Some(json!("someone-else")))]),
    );
    assert_eq!(
        v.verify(&token, NOW).map(|id| id.sub),
        Ok("alice".to_string())
    );
}

// ---- one refusal per check ----------------------------------------------

#[test]
fn no_token() {
    assert_eq!(verifier().verify("", NOW), Err(Refusal::Missing));
    let Ok(Parsed::Complete { request, .. }) = parse_request(b"GET /chat HTTP/1.1\r\n\r\n") else {
        panic!("not complete");
    };
    assert_eq!(token_of(&request), None);
}

#[test]
fn malformed() {
    let v = verifier();
    let token = good();
    let (header, rest) = token.split_once('.').unwrap();
    let claims_part = rest.split('.').next().unwrap();
    for bad in [
        "not-a-token".to_string(),
        rest.to_string(),
        format!("{token}.{header}"),
        format!("{header}=.{rest}"),
        format!("{header}.{claims_part}.c2ln+"),
        format!("{}.{rest}", b64(br#"{"alg":"ES256""#)),
        format!("{}.{rest}", b64(br#"["ES256"]"#)),
        format!("{}.{rest}", b64(br#"{"alg":"ES256","crit":["exp"]}"#)),
    ] {
        assert_eq!(v.verify(&bad, NOW), Err(Refusal::Malformed), "{bad}");
    }
}

#[test]
fn alg_none_is_never_accepted() {
    let v = verifier();
    let body = b64(claims(&[]).to_string().as_bytes());
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE","typ":"JWT"}"#,
    ] {
        for signature in ["", "c2ln"] {
            let token = format!("{}.{body}.{signature}", b64(header.as_bytes()));
            assert_eq!(
                v.verify(&token, NOW),
                Err(Refusal::Algorithm),
                "{header} {signature:?}"
            );
        }
    }
    // Nor any algorithm roomd has no key kind for.
    let token = mint_with(
        &Header::new(Algorithm::HS512),
        &claims(&[]),
        &signing_key(Algorithm::HS256),
    );
    assert_eq!(v.verify(&token, NOW), Err(Refusal::Algorithm));
}

#[test]
fn algorithm_confusion_is_refused() {
    // HS256 "signed" with the RSA public key's PEM text as the secret.
    let pem = data("rs256.pub.pem");
    let token = mint_with(
        &Header::new(Algorithm::HS256),
        &claims(&[]),
        &EncodingKey::from_secret(&pem).unwrap(),
    );
    let public_only = Verifier::new(
        vec![Key::public_pem(Some("rs256".into()), &pem).unwrap()],
        config(),
    );
    assert_eq!(public_only.verify(&token, NOW), Err(Refusal::Algorithm));
    // With an HS256 secret configured too, the token is checked with that
    // secret only, and fails.
    assert_eq!(verifier().verify(&token, NOW), Err(Refusal::Signature));
    // Same with the kid naming the public key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rs256".into());
    let token = mint_with(
        &header,
        &claims(&[]),
        &EncodingKey::from_secret(&pem).unwrap(),
    );
    assert_eq!(verifier().verify(&token, NOW), Err(Refusal::Algorithm));
}

#[test]
fn bad_signature() {
    let v = verifier();
    let token = good();
    let (input, signature) = split_signature(&token);
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[10] ^= 0x01;
    assert_eq!(
        v.verify(&format!("{input}.{}", b64(&sig)), NOW),
        Err(Refusal::Signature)
    );
    // Claims changed after signing.
    let other = b64(claims(&[("sub", Some(json!("mallory")))])
        .to_string()
        .as_bytes());
    let header = input.split('.').next().unwrap();
    assert_eq!(
        v.verify(&format!("{header}.{other}.{signature}"), NOW),
        Err(Refusal::Signature)
    );
    // Signed by a key roomd does not have.
    let stranger = EncodingKey::from_secret(&[7u8; 32]).unwrap();
    let token = mint_with(&Header::new(Algorithm::HS256), &claims(&[]), &stranger);
    assert_eq!(v.verify(&token, NOW), Err(Refusal::Signature));
    // An empty signature.
    assert_eq!(v.verify(&format!("{input}."), NOW), Err(Refusal::Signature));
}

#[test]
fn exp_is_required() {
    let token = mint(Algorithm::ES256, &claims(&[("exp", None)]));
    assert_eq!(verifier().verify(&token, NOW), Err(Refusal::NoExpiry));
}

#[test]
fn expired_beyond_the_leeway() {
    let v = verifier();
    let at = |exp: u64| mint(Algorithm::EdDSA, &claims(&[("exp", Some(json!(exp)))]));
    assert!(v.verify(&at(NOW - 29), NOW).is_ok());
    assert_eq!(v.verify(&at(NOW - 30), NOW), Err(Refusal::Expired));
    assert_eq!(v.verify(&at(NOW - 3600), NOW), Err(Refusal::Expired));
}

#[test]
fn nbf_ahead_beyond_the_leeway() {
    let v = verifier();
    let at = |nbf: u64| mint(Algorithm::RS256, &claims(&[("nbf", Some(json!(nbf)))]));
    assert!(v.verify(&at(NOW + 30), NOW).is_ok());
    assert_eq!(v.verify(&at(NOW + 31), NOW), Err(Refusal::NotYetValid));
}

#[test]
fn wrong_audience() {
    let v = verifier();
    for aud in [
        json!("other"),
        json!(["other", "more"]),
        json!(null),
        json!(7),
    ] {
        let token = mint(Algorithm::HS256, &claims(&[("aud", Some(aud.clone()))]));
        assert_eq!(v.verify(&token, NOW), Err(Refusal::Audience), "{aud}");
    }
    let token = mint(
        Algorithm::HS256,
        &claims(&[("aud", Some(json!(["other", "roomd"])))]),
    );
    assert!(v.verify(&token, NOW).is_ok());
}

#[test]
fn wrong_issuer() {
    let v = verifier();
    for iss in [
        Some(json!("https://evil.example")),
        Some(json!(["https://id.example"])),
        None,
    ] {
        let token = mint(Algorithm::ES256, &claims(&[("iss", iss.clone())]));
        assert_eq!(v.verify(&token, NOW), Err(Refusal::Issuer), "{iss:?}");
    }
}

#[test]
fn missing_or_bad_subject() {
    let v = verifier();
    for sub in [
        None,
        Some(json!("")),
        Some(json!(42)),
        Some(json!(["alice"])),
    ] {
        let token = mint(Algorithm::ES256, &claims(&[("sub", sub.clone())]));
        assert_eq!(v.verify(&token, NOW), Err(Refusal::Subject), "{sub:?}");
    }
}

#[test]
fn too_long_subject() {
    let v = verifier();
    let with = |sub: String| mint(Algorithm::ES256, &claims(&[("sub", Some(json!(sub)))]));
    assert!(v.verify(&with("ü".repeat(128)), NOW).is_ok());
    assert_eq!(v.verify(&with("ü".repeat(129)), NOW), Err(Refusal::Subject));
}

#[test]
fn oversized_token() {
    let v = verifier();
    // A validly signed token, over 8 KiB only because of a large claim.
    let token = mint(
        Algorithm::HS256,
        &claims(&[("pad", Some(json!("x".repeat(MAX_TOKEN_BYTES))))]),
    );
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(v.verify(&token, NOW), Err(Refusal::TooLarge));
    // Garbage that size is refused the same way, before any parsing.
    assert_eq!(
        v.verify(&"!".repeat(MAX_TOKEN_BYTES + 1), NOW),
        Err(Refusal::TooLarge)
    );
    assert_eq!(
        v.verify(&"!".repeat(MAX_TOKEN_BYTES), NOW),
        Err(Refusal::Malformed)
    );
}

#[test]
fn a_malformed_rooms_claim() {
    let token = mint(
        Algorithm::ES256,
        &claims(&[("rooms", Some(json!("lobby")))]),
    );
    assert_eq!(verifier().verify(&token, NOW), Err(Refusal::Malformed));
}

// ---- where the token comes from -----------------------------------------

/// Parses an upgrade with `headers` (each ending in CRLF) and `query`.
fn upgrade(query: &str, headers: &str) -> roomd::protocol::http::Request {
    let head = format!(
        "GET /stream{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    );
    match parse_request(head.as_bytes()) {
        Ok(Parsed::Complete { request, .. }) => request,
        other => panic!("{other:?}"),
    }
}

/// What the request's token verifies to, and where it was.
fn outcome(req: &roomd::protocol::http::Request) -> Option<(TokenSource, Result<String, Refusal>)> {
    token_of(req).map(|(source, token)| (source, verifier().verify(token, NOW).map(|id| id.sub)))
}

#[test]
fn each_of_the_three_places() {
    let t = good();
    let alice = Ok("alice".to_string());
    let req = upgrade(
        "",
        &format!("Sec-WebSocket-Protocol: roomd, roomd.token.{t}\r\n"),
    );
    assert_eq!(
        outcome(&req),
        Some((TokenSource::Subprotocol, alice.clone()))
    );
    assert_eq!(
        roomd::protocol::token::selected_protocol(&req),
        Some("roomd")
    );
    let req = upgrade("", &format!("Authorization: Bearer {t}\r\n"));
    assert_eq!(outcome(&req), Some((TokenSource::Bearer, alice.clone())));
    let req = upgrade(&format!("?userId=alice&token={t}"), "");
    assert_eq!(outcome(&req), Some((TokenSource::Query, alice)));
    assert_eq!(without_token(&req.query), "userId=alice");
    assert!(!format!("{req:?}").contains(&t));
}

#[test]
fn a_bad_token_first_is_not_rescued_by_a_good_one_later() {
    let good = good();
    let expired = mint(
        Algorithm::ES256,
        &claims(&[("exp", Some(json!(NOW - 3600)))]),
    );
    let req = upgrade(
        &format!("?token={good}"),
        &format!(
            "Sec-WebSocket-Protocol: roomd, roomd.token.{expired}\r\nAuthorization: Bearer {good}\r\n"
        ),
    );
    assert_eq!(
        outcome(&req),
        Some((TokenSource::Subprotocol, Err(Refusal::Expired)))
    );
    let req = upgrade(
        &format!("?token={good}"),
        "Authorization: Bearer garbage\r\n",
    );
    assert_eq!(
        outcome(&req),
        Some((TokenSource::Bearer, Err(Refusal::Malformed)))
    );
    let req = upgrade(&format!("?token=&token={good}"), "");
    assert_eq!(
        outcome(&req),
        Some((TokenSource::Query, Err(Refusal::Missing)))
    );
    // Scrubbed, the query carries no token at all.
    assert_eq!(
        token_of(&upgrade(&format!("?{}", without_token(&req.query)), "")),
        None
    );
}

// ---- the `token` fuzz target's seeds -------------------------------------

/// The seeds of `fuzz/seeds/token/`: one token per outcome (written by
/// `ROOMD_WRITE_SEEDS=1`, not compared: ECDSA signatures are random).
pub fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(&str, String)> = Vec::new();
    for (name, alg) in [
        ("valid_hs256", Algorithm::HS256),
        ("valid_es256", Algorithm::ES256),
        ("valid_eddsa", Algorithm::EdDSA),
        ("valid_rs256", Algorithm::RS256),
    ] {
        seeds.push((name, mint(alg, &claims(&[]))));
    }
    for (name, claim, value) in [
        ("rooms", "rooms", Some(json!(["lobby", "team-*"]))),
        ("expired", "exp", Some(json!(NOW - 60))),
        ("not_yet_valid", "nbf", Some(json!(NOW + 60))),
        ("wrong_audience", "aud", Some(json!("other"))),
        ("no_subject", "sub", None),
    ] {
        seeds.push((name, mint(Algorithm::HS256, &claims(&[(claim, value)]))));
    }
    let body = b64(claims(&[]).to_string().as_bytes());
    seeds.push(("alg_none", format!("{}.{body}.", b64(br#"{"alg":"none"}"#))));
    let pem = data("rs256.pub.pem");
    let confused = mint_with(
        &Header::new(Algorithm::HS256),
        &claims(&[]),
        &EncodingKey::from_secret(&pem).unwrap(),
    );
    seeds.push(("alg_confusion", confused));
    let good = good();
    let (input, _) = split_signature(&good);
    seeds.push(("bad_signature", format!("{input}.{}", b64(&[0u8; 64]))));
    seeds.push(("two_parts", input.to_string()));
    seeds
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.into_bytes()))
        .collect()
}

#[test]
fn the_fuzz_seeds_verify_as_named() {
    let v = verifier();
    for (name, token) in fuzz_seeds() {
        let got = v.verify(std::str::from_utf8(&token).unwrap(), NOW);
        let expected = match name.as_str() {
            n if n.starts_with("valid_") || n == "rooms" => Ok(()),
            "expired" => Err(Refusal::Expired),
            "not_yet_valid" => Err(Refusal::NotYetValid),
            "wrong_audience" => Err(Refusal::Audience),
            "no_subject" => Err(Refusal::Subject),
            "alg_none" => Err(Refusal::Algorithm),
            "alg_confusion" | "bad_signature" => Err(Refusal::Signature),
            "two_parts" => Err(Refusal::Malformed),
            other => panic!("no expectation for seed {other}"),
        };
        assert_eq!(got.map(drop), expected, "{name}");
    }
}
