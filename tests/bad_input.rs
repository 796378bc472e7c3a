mod common;
use common::TestServer;
use reqwest::Method;
#[tokio::test]
async fn probe() {
    let srv = TestServer::start_with(|raw| {
        raw.max_body_bytes = Some(4096);
        raw.max_upload_bytes = Some(4096);
    })
    .await;
    let admin = srv.agent("a@example.com", "admin").await;
    for (m, p) in [
        (Method::PUT, "/api/v1/teams"),
        (Method::DELETE, "/api/v1/conversations/1"),
        (Method::GET, "/api/v1/nope"),
    ] {
        let r = admin.request(m.clone(), p).send().await.unwrap();
        let (s, ct) = (r.status(), r.headers().get("content-type").cloned());
        println!("{m} {p} -> {} {:?} {:?}", s, ct, r.text().await);
    }
    let r = admin
        .request(Method::POST, "/api/v1/attachments?file_name=a.txt")
        .header("Content-Type", "text/plain")
        .body(vec![b'x'; 10000])
        .send()
        .await
        .unwrap();
    let (s, ct) = (r.status(), r.headers().get("content-type").cloned());
    println!("upload -> {} {:?} {:?}", s, ct, r.text().await);
    let r = admin
        .request(Method::POST, "/api/v1/teams")
        .header("Content-Type", "application/json")
        .body(format!("{{\"name\":\"{}\"}}", "x".repeat(10000)))
        .send()
        .await
        .unwrap();
    println!("json -> {} {:?}", r.status(), r.text().await);
    let r = admin
        .request(Method::POST, "/api/v1/teams")
        .body("{\"name\":\"x\"}")
        .send()
        .await
        .unwrap();
    println!("no ct -> {} {:?}", r.status(), r.text().await);
    let r = admin
        .request(Method::POST, "/api/v1/teams")
        .header("Content-Type", "application/json")
        .body("")
        .send()
        .await
        .unwrap();
    println!("empty -> {} {:?}", r.status(), r.text().await);
    let r = admin
        .request(Method::POST, "/api/v1/teams")
        .header("Content-Type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    println!("[] -> {} {:?}", r.status(), r.text().await);
    let r = admin
        .request(Method::POST, "/api/v1/teams")
        .header("Content-Type", "application/json")
        .body("[\"T\"]")
        .send()
        .await
        .unwrap();
    println!("[T] -> {} {:?}", r.status(), r.text().await);
    let m = reqwest::get(format!("{}/metrics", srv.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for l in m.lines().filter(|l| l.contains("requests_total")).take(5) {
        println!("{l}");
    }
}
