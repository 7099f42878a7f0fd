//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the types' schemas; served at `GET /v1/openapi.json` (no token needed).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Beongae node API",
        description = "A Lightning node's HTTP/JSON API. Send `Authorization: Bearer TOKEN`; a token's scope (read < invoices < payments < admin) limits what it may do. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code. Lightning amounts are in millisatoshi, on-chain amounts in satoshi."
    ),
    paths(
        routes::node::info, routes::node::stop, routes::node::peers, routes::node::connect,
        routes::node::disconnect, routes::node::ping, routes::node::graph,
        routes::node::tokens, routes::node::create_token, routes::node::revoke_token,
        routes::wallet::balance, routes::wallet::new_address, routes::wallet::send,
        routes::channels::list, routes::channels::open, routes::channels::close,
        routes::channels::set_policy, routes::channels::forwards,
        routes::payments::invoices, routes::payments::invoice, routes::payments::create_invoice,
        routes::payments::payments, routes::payments::payment, routes::payments::pay,
        routes::payments::keysend, routes::events::stream, routes::metrics::metrics,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

/// `GET /v1/openapi.json`.
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
