//! Type confusion: every field of every shape read from the service, given a value of another
//! JSON type, reads exactly as if it were absent. So a signed body cannot smuggle news through
//! serde's leniency (a struct read from an array in field order, a number read as an id).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::answers;
use super::webhook::parse_event;
use crate::domain::Timestamp;

/// The JSON type a field is meant to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Object,
    List,
    Number,
    Flag,
    /// An id: a string, or a populated object (the SDK's own union).
    TextOrObject,
}

fn fits(kind: Kind, value: &Value) -> bool {
    match kind {
        Kind::Text => value.is_string(),
        Kind::Object => value.is_object(),
        Kind::List => value.is_array(),
        Kind::Number => value.is_number(),
        Kind::Flag => value.is_boolean(),
        Kind::TextOrObject => value.is_string() || value.is_object(),
    }
}

/// The shapes read from the service, each with a body that uses every field it reads.
#[derive(Debug, Clone, Copy)]
enum Shape {
    PostEvent,
    AccountEvent,
    PostAnswer,
    AccountsAnswer,
}

const AT: &str = "2026-03-01T10:00:00Z";

fn platform_entry() -> Value {
    json!({"platform": "twitter", "status": "published", "accountId": "acc_1", "platformPostId": "185",
           "publishedUrl": "https://x.com/a/status/185", "platformPostUrl": "https://x.com/a/status/185",
           "publishedAt": AT, "error": "late", "errorMessage": "late", "errorCategory": "auth_expired",
           "removedFromPlatformAt": AT})
}

fn post() -> Value {
    json!({"id": "svc_1", "_id": "svc_1", "status": "partial", "scheduledFor": AT, "publishedAt": AT,
           "platforms": [platform_entry(), {"platform": "linkedin", "status": "failed", "accountId": {"_id": "acc_2"}}],
           "metadata": {"stacc_project_id": "proj", "stacc_post_id": "post", "stacc_generation": 1}})
}

/// Every field of a post, under `at`.
fn post_fields(at: &str) -> Vec<(String, Kind)> {
    let mut fields = vec![(at.to_owned(), Kind::Object)];
    for (name, kind) in [
        ("id", Kind::Text),
        ("_id", Kind::Text),
        ("status", Kind::Text),
        ("scheduledFor", Kind::Text),
        ("publishedAt", Kind::Text),
        ("platforms", Kind::List),
        ("platforms/0", Kind::Object),
        ("platforms/1/accountId", Kind::TextOrObject),
        ("metadata", Kind::Object),
        ("metadata/stacc_project_id", Kind::Text),
        ("metadata/stacc_post_id", Kind::Text),
        ("metadata/stacc_generation", Kind::Number),
    ] {
        fields.push((format!("{at}/{name}"), kind));
    }
    for (name, kind) in [
        ("platform", Kind::Text),
        ("status", Kind::Text),
        ("accountId", Kind::TextOrObject),
        ("platformPostId", Kind::Text),
        ("publishedUrl", Kind::Text),
        ("platformPostUrl", Kind::Text),
        ("publishedAt", Kind::Text),
        ("error", Kind::Text),
        ("errorMessage", Kind::Text),
        ("errorCategory", Kind::Text),
        ("removedFromPlatformAt", Kind::Text),
    ] {
        fields.push((format!("{at}/platforms/0/{name}"), kind));
    }
    fields
}

impl Shape {
    const ALL: [Shape; 4] = [Shape::PostEvent, Shape::AccountEvent, Shape::PostAnswer, Shape::AccountsAnswer];

    fn body(self) -> Value {
        match self {
            Shape::PostEvent => {
                json!({"id": "evt_1", "event": "post.partial", "timestamp": AT, "test": false, "post": post()})
            }
            Shape::AccountEvent => {
                json!({"id": "evt_2", "event": "account.disconnected", "timestamp": AT, "test": false,
                "account": {"accountId": "acc_1", "_id": "acc_1", "profileId": "prof_1", "platform": "twitter",
                            "username": "me", "displayName": "Me", "disconnectionType": "intentional", "reason": "gone"}})
            }
            Shape::PostAnswer => json!({"post": post()}),
            Shape::AccountsAnswer => json!({"accounts": [{"_id": "acc_1", "platform": "twitter", "username": "me",
                "displayName": "Me", "profilePicture": "https://cdn/a.png", "profileUrl": "https://x.com/me",
                "isActive": false, "needsReconnection": true, "enabled": false}]}),
        }
    }

    /// Every field the shape reads, as a JSON pointer, with its type.
    fn fields(self) -> Vec<(String, Kind)> {
        let envelope = |object: &str| {
            let mut fields: Vec<(String, Kind)> =
                [("/id", Kind::Text), ("/event", Kind::Text), ("/timestamp", Kind::Text), ("/test", Kind::Flag)]
                    .into_iter()
                    .map(|(p, k)| (p.to_owned(), k))
                    .collect();
            fields.push((object.to_owned(), Kind::Object));
            fields
        };
        match self {
            Shape::PostEvent => [envelope("/post"), post_fields("/post")].concat(),
            Shape::AccountEvent => {
                let mut fields = envelope("/account");
                for (name, kind) in [
                    ("accountId", Kind::TextOrObject),
                    ("_id", Kind::Text),
                    ("profileId", Kind::TextOrObject),
                    ("platform", Kind::Text),
                    ("username", Kind::Text),
                    ("displayName", Kind::Text),
                    ("disconnectionType", Kind::Text),
                    ("reason", Kind::Text),
                ] {
                    fields.push((format!("/account/{name}"), kind));
                }
                fields
            }
            Shape::PostAnswer => post_fields("/post"),
            Shape::AccountsAnswer => {
                let mut fields = vec![("/accounts".to_owned(), Kind::List), ("/accounts/0".to_owned(), Kind::Object)];
                for (name, kind) in [
                    ("_id", Kind::Text),
                    ("platform", Kind::Text),
                    ("username", Kind::Text),
                    ("displayName", Kind::Text),
                    ("profilePicture", Kind::Text),
                    ("profileUrl", Kind::Text),
                    ("isActive", Kind::Flag),
                    ("needsReconnection", Kind::Flag),
                    ("enabled", Kind::Flag),
                ] {
                    fields.push((format!("/accounts/0/{name}"), kind));
                }
                fields
            }
        }
    }

    /// What we read from a body of this shape (for an event, what it asks of the store).
    fn read(self, body: &Value) -> String {
        let received = Timestamp::parse("2026-03-02T00:00:00Z").unwrap();
        match self {
            Shape::PostEvent | Shape::AccountEvent => {
                format!("{:?}", parse_event(&serde_json::to_vec(body).unwrap(), received).map(|e| e.action))
            }
            Shape::PostAnswer => format!("{:?}", answers::post(body, received)),
            Shape::AccountsAnswer => format!("{:?}", answers::accounts(body)),
        }
    }

    /// What a field of the wrong type reads as: the field absent (`null` is absent). A copy's
    /// status of another type is no news about that copy at all, so it reads as the copy absent.
    fn absent(self, pointer: &str, value: &Value) -> String {
        let mut body = self.body();
        let copy = pointer.strip_suffix("/status").filter(|entry| entry.contains("/platforms/"));
        let gone = copy.filter(|_| !value.is_null()).unwrap_or(pointer);
        remove(&mut body, gone);
        self.read(&body)
    }
}

fn remove(body: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer below the root");
    match body.pointer_mut(parent).expect("the field's parent is in the body") {
        Value::Object(map) => {
            map.remove(last);
        }
        Value::Array(items) => {
            items.remove(last.parse::<usize>().expect("an index"));
        }
        _ => panic!("{parent} holds no fields"),
    }
}

fn confused(shape: Shape, pointer: &str, value: Value) -> String {
    let mut body = shape.body();
    *body.pointer_mut(pointer).expect("the field is in the body") = value;
    shape.read(&body)
}

/// Any JSON value, with words and keys the shapes use, so a confused value looks like a real one.
fn any_json() -> impl Strategy<Value = Value> {
    const WORDS: [&str; 8] = ["svc_1", "twitter", "published", "proj", "post", "acc_1", AT, "https://x.com/1"];
    const KEYS: [&str; 6] = ["_id", "id", "platform", "status", "stacc_project_id", "stacc_post_id"];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0.0f64..1e6).prop_map(Value::from),
        prop::sample::select(WORDS.to_vec()).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn any_field() -> impl Strategy<Value = (Shape, String, Kind)> {
    let all: Vec<(Shape, String, Kind)> =
        Shape::ALL.into_iter().flat_map(|s| s.fields().into_iter().map(move |(p, k)| (s, p, k))).collect();
    prop::sample::select(all)
}

#[test]
fn every_sample_body_is_news_so_a_confused_field_could_change_something() {
    for shape in Shape::ALL {
        let read = shape.read(&shape.body());
        for (pointer, kind) in shape.fields() {
            let value = shape.body().pointer(&pointer).cloned().unwrap_or_else(|| panic!("{pointer} in {shape:?}"));
            assert!(fits(kind, &value), "{pointer} in {shape:?} is of its own type");
        }
        assert!(!read.contains("Ignore") && read != "None" && read != "[]", "{shape:?} reads as news: {read}");
    }
}

#[test]
fn an_object_given_as_the_array_of_its_values_reads_as_absent() {
    // The measured attack: `metadata` as `["<project>", "<post>"]`, read by serde in field order.
    for shape in Shape::ALL {
        for (pointer, kind) in shape.fields().into_iter().filter(|(_, k)| *k == Kind::Object) {
            let object = shape.body().pointer(&pointer).cloned().unwrap();
            let values: Vec<Value> = object.as_object().unwrap().values().cloned().collect();
            let array = Value::Array(values);
            assert_eq!(
                confused(shape, &pointer, array.clone()),
                shape.absent(&pointer, &array),
                "{pointer} ({kind:?})"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_field_of_another_json_type_reads_as_absent((shape, pointer, kind) in any_field(), value in any_json()) {
        prop_assume!(!fits(kind, &value));
        let absent = shape.absent(&pointer, &value);
        prop_assert_eq!(confused(shape, &pointer, value), absent, "{:?} {}", shape, pointer);
    }
}
