//! The dashboard: one page, a stylesheet and hand-written ES modules, compiled into the binary.
//!
//! The page renders the status snapshot it receives over Server-Sent Events
//! (`/api/v1/stream`) and reads history from the REST API. Where reads need a token
//! it first shows a sign-in step (`session.js`, checked with `GET /api/v1/whoami`) and
//! reads nothing else until a token is accepted; the token stays in the tab's
//! `sessionStorage`, goes in the `Authorization` header of every read and action, and
//! never in a URL: each stream connection opens with a fresh single-use ticket
//! ([`super::ticket`]). The page has no inline script and no style attribute in its
//! markup (styles computed at run time go through the CSSOM), so a
//! `Content-Security-Policy` without `'unsafe-inline'` serves it. Its script is a set
//! of ES modules (`main.js` imports the others) served as they are written: no
//! build step, no bundler, no CDN, no third-party files. Every file lives in
//! [`ASSETS`] and is served by [`asset`] at `/assets/<name>`; the unit tests
//! check that every module the page or another module imports is in the table.

use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::ApiError;

const INDEX: &str = include_str!("assets/index.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One file served under `/assets/`.
#[derive(Debug)]
pub struct Asset {
    /// The file name, as the page and the modules' `import`s name it.
    pub name: &'static str,
    /// The file, compiled in.
    pub body: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

/// `(name, body, content type)` for each table row.
const fn file(name: &'static str, body: &'static str, content_type: &'static str) -> Asset {
    Asset { name, body, content_type }
}

/// Every file of the dashboard but the page itself: the stylesheet, the icon and the modules.
pub const ASSETS: &[Asset] = &[
    file("dashboard.css", include_str!("assets/dashboard.css"), CSS),
    file("favicon.svg", include_str!("assets/favicon.svg"), SVG),
    file("main.js", include_str!("assets/main.js"), JAVASCRIPT),
    file("format.js", include_str!("assets/format.js"), JAVASCRIPT),
    file("dom.js", include_str!("assets/dom.js"), JAVASCRIPT),
    file("state.js", include_str!("assets/state.js"), JAVASCRIPT),
    file("api.js", include_str!("assets/api.js"), JAVASCRIPT),
    file("banners.js", include_str!("assets/banners.js"), JAVASCRIPT),
    file("coordination.js", include_str!("assets/coordination.js"), JAVASCRIPT),
    file("regions.js", include_str!("assets/regions.js"), JAVASCRIPT),
    file("charts.js", include_str!("assets/charts.js"), JAVASCRIPT),
    file("plan.js", include_str!("assets/plan.js"), JAVASCRIPT),
    file("events.js", include_str!("assets/events.js"), JAVASCRIPT),
    file("dialogs.js", include_str!("assets/dialogs.js"), JAVASCRIPT),
    file("actions.js", include_str!("assets/actions.js"), JAVASCRIPT),
    file("stream.js", include_str!("assets/stream.js"), JAVASCRIPT),
    file("session.js", include_str!("assets/session.js"), JAVASCRIPT),
];

/// `GET /`
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /assets/{file}`: a file of [`ASSETS`], revalidated on every load (`no-cache`).
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let a =
        ASSETS.iter().find(|a| a.name == file).ok_or_else(|| ApiError::NotFound("no such dashboard asset".into()))?;
    Ok(([(header::CONTENT_TYPE, a.content_type), (header::CACHE_CONTROL, "no-cache")], a.body).into_response())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::StatusCode;

    use super::*;

    /// The quoted values that follow each `marker` in `text`.
    fn quoted_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
        text.match_indices(marker).filter_map(|(i, _)| text[i + marker.len()..].split('"').next()).collect()
    }

    /// The `/assets/…` files the page links to (stylesheet, entry module).
    fn page_references() -> Vec<&'static str> {
        ["src=\"", "href=\""]
            .iter()
            .flat_map(|m| quoted_after(INDEX, m))
            .filter_map(|v| v.strip_prefix("/assets/"))
            .collect()
    }

    /// The modules a module imports: a statement that starts a line with `import`
    /// (`import { a } from "./x.js";`, over several lines too, or `import "./x.js";`)
    /// names its module in the last quoted string before its `;`; plus any `import("./x.js")`.
    fn imports(module: &'static str) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut at = 0;
        for line in module.split_inclusive('\n') {
            let rest = &module[at + line.len() - line.trim_start().len()..];
            at += line.len();
            if ["import ", "import{", "import\""].iter().any(|k| rest.starts_with(k)) {
                let statement = rest.split(';').next().unwrap_or(rest);
                out.push(statement.rsplit('"').nth(1).expect("an import names its module in double quotes"));
            }
        }
        out.extend(quoted_after(module, "import(\""));
        out.into_iter().map(|v| v.strip_prefix("./").unwrap_or(v)).collect()
    }

    async fn content_type(name: &str) -> Option<String> {
        let resp = asset(Path(name.to_string())).await.ok()?;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        Some(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn every_module_the_page_or_a_module_imports_is_served_as_javascript() {
        // Walk the import graph from the page, as the browser does.
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = page_references().into_iter().filter(|n| n.ends_with(".js")).collect();
        assert_eq!(todo, ["main.js"], "index.html loads one entry module");
        while let Some(name) = todo.pop() {
            if !seen.insert(name) {
                continue;
            }
            let ty = content_type(name).await.unwrap_or_else(|| panic!("{name} is imported but not served"));
            assert!(ty.starts_with("text/javascript"), "{name} is served as {ty}");
            let body = ASSETS.iter().find(|a| a.name == name).unwrap().body;
            todo.extend(imports(body));
        }
        // Every served module is reached, so none is left over from an older layout.
        let served: BTreeSet<&str> = ASSETS.iter().map(|a| a.name).filter(|n| n.ends_with(".js")).collect();
        assert_eq!(seen, served);
    }

    #[tokio::test]
    async fn the_stylesheet_the_page_links_is_served_as_css() {
        let css: Vec<&str> = page_references().into_iter().filter(|n| n.ends_with(".css")).collect();
        assert_eq!(css, ["dashboard.css"]);
        assert_eq!(content_type("dashboard.css").await.as_deref(), Some(CSS));
    }

    #[tokio::test]
    async fn the_icon_the_page_links_is_served_from_the_same_origin_as_svg() {
        let icons: Vec<&str> = page_references().into_iter().filter(|n| n.ends_with(".svg")).collect();
        assert_eq!(icons, ["favicon.svg"]);
        assert_eq!(content_type("favicon.svg").await.as_deref(), Some(SVG));
        assert!(!INDEX.contains("href=\"data:"), "a data: URL needs img-src data: in the CSP");
    }

    #[tokio::test]
    async fn an_unknown_asset_is_not_found() {
        assert!(asset(Path("dashboard.js".to_string())).await.is_err());
        assert!(asset(Path("../index.html".to_string())).await.is_err());
    }

    #[test]
    fn the_page_has_no_inline_script_handler_or_style_so_a_csp_without_unsafe_inline_serves_it() {
        for tag in INDEX.split('<').skip(1).map(|t| t.split('>').next().unwrap_or(t)) {
            if tag.starts_with("script") {
                assert!(tag.contains(" src=\"/assets/"), "an inline <script>: <{tag}>");
            }
            assert!(!tag.starts_with("style"), "a <style> element: <{tag}>");
            for word in tag.split_whitespace() {
                let attr = word.split('=').next().unwrap_or(word).to_ascii_lowercase();
                let is_attr = word.contains('=');
                assert!(!(is_attr && (attr == "style" || attr.starts_with("on"))), "`{word}` in <{tag}>");
            }
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for banned in ["style: `", "style: \"", "setAttribute(\"style\"", ".innerHTML", "eval(", "new Function"] {
                assert!(!a.body.contains(banned), "{} uses {banned}", a.name);
            }
        }
    }

    #[test]
    fn the_router_serves_the_assets_route() {
        assert!(super::super::route_table().contains(&("get", "/assets/{file}")));
    }
}
