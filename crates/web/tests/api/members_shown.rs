//! Members as the group page and the big screen show them: by seat and masked name (`domain::text::masked_name`,
//! as the winners are), the reader's own seat marked 你 / You; tickets only in the "如何验证" fold, where the
//! draw's verification needs them, and never a member's full name.

use crate::common::{campaign_with, live_campaign_with, named_customer};
use crate::pages::page;
use reqwest::StatusCode;
use serde_json::json;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// A customer by `name`, with money in their wallet.
async fn named(app: &TestApp, operator: &TestUser, phone: &str, name: &str) -> TestUser {
    let user = named_customer(app, phone, name).await;
    app.credit(operator, json!({"user_id": user.id}), 5_000).await;
    user
}

/// The part of `html` from the members list's start to its end.
fn members_list(html: &str) -> &str {
    let start = html.find("<ul class=\"members\"").expect("a members list");
    &html[start..start + html[start..].find("</ul>").expect("the list ends")]
}

async fn members_are_shown_by_seat_and_masked_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138700").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let zhang = named(&app, &operator, "13800138701", "张三丰").await;
    let alice = named(&app, &operator, "13800138702", "Alice").await;
    let wang = named(&app, &operator, "13800138703", "小王").await;
    let (status, first) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&zhang.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let (status, second) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&alice.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let tickets = [&first, &second].map(|joined| joined["membership"]["ticket"].as_str().unwrap().to_owned());

    // Alice's view of the open group: the seats with masked names, hers marked, the free seat.
    let shown = page(&app, &format!("/g/{group}"), Some(&alice), "zh-CN").await;
    assert_eq!(shown.status, StatusCode::OK);
    let list = members_list(&shown.body);
    for seat in [
        "<span class=\"member-seat\">1 号</span> <span class=\"member-name\">张*丰</span></li>",
        "<span class=\"member-seat\">2 号</span> <span class=\"member-name\">A*e</span> <span class=\"member-you\" data-me>你</span></li>",
        "<span class=\"member-seat\">3 号</span> 空位</li>",
    ] {
        assert!(list.contains(seat), "{seat} is not in {list}");
    }
    assert_eq!(list.matches("data-me").count(), 1, "only the reader's own seat is marked");
    assert!(!shown.body.contains("张三丰"), "another member's full name is never shown");
    // Tickets: not in the list, but in the fold, by seat, for the verification.
    let fold = &shown.body[shown.body.find("data-tickets").expect("the fold lists the tickets")..];
    for (seq, ticket) in tickets.iter().enumerate() {
        assert!(!list.contains(ticket.as_str()), "no ticket in the list");
        assert!(fold.contains(&format!("<li data-seq=\"{}\">{} 号 <code>{ticket}</code></li>", seq + 1, seq + 1)));
    }
    let english = page(&app, &format!("/g/{group}"), Some(&alice), "en").await;
    let list = members_list(&english.body);
    assert!(
        list.contains(
            "Seat 2</span> <span class=\"member-name\">A*e</span> <span class=\"member-you\" data-me>You</span>"
        ),
        "{list}"
    );

    // Full: drawn at once. The big screen shows every seat by masked name, no ticket anywhere, no one marked.
    let (status, third) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&wang.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_eq!(third["group"]["status"], "drawn");
    let live = page(&app, &format!("/g/{group}/live"), Some(&alice), "zh-CN").await;
    assert_eq!(live.status, StatusCode::OK);
    let list = members_list(&live.body);
    for (seq, name) in [(1, "张*丰"), (2, "A*e"), (3, "小*")] {
        assert!(list.contains(&format!("{seq} 号</span> <span class=\"member-name\">{name}</span>")), "{list}");
    }
    assert!(!list.contains("data-me"), "the room's screen marks no one");
    let third_ticket = third["membership"]["ticket"].as_str().unwrap();
    for ticket in tickets.iter().map(String::as_str).chain([third_ticket]) {
        assert!(!live.body.contains(ticket), "the big screen shows no ticket");
    }
    let winner = third["group"]["draw"]["winners"][0].as_u64().unwrap();
    assert!(live.body.contains(&format!("data-winner-seat=\"{winner}\"")), "the winner's card");
    assert!(list.contains(&format!("class=\"member winner\" data-seq=\"{winner}\"")), "the winner's seat: {list}");
    app.finish().await;
}

on_both_backends!(members_are_shown_by_seat_and_masked_name);
