//! The client adapters against a real tonic server on 127.0.0.1:0 whose
//! services wrap in-memory fakes: what a fake returns, success or any error
//! variant, is what the caller of the client gets, and what the caller
//! sends is what the fake receives.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::{
    Binding, ContactSpec, DeliveryError, DocumentChange, ETag, EdgeDelivery, FinalResponse,
    FlowToken, MessageOutcome, Messaging, MessagingError, OutboundRequest, PageMessage, Presence,
    PresenceError, PublishOk, PublishRequest, RegisterContacts, RegisterRequest, RegistrarError,
    SubscribeDialog, SubscribeOk, SubscribeRequest, UnixTime,
};
use async_trait::async_trait;
use bytes::Bytes;
use proto::{
    edge_delivery_service, messaging_service, presence_service, ClientConfig, EdgeRouter,
    GrpcEdgeDelivery, GrpcMessaging, GrpcPresence,
};
use sip::{Aor, Method};
use store::StoreError;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

fn aor(s: &str) -> Aor {
    s.parse().unwrap()
}

/// Answers queued by the test, and the requests the service saw.
struct Script<Req, Ans> {
    answers: Mutex<VecDeque<Ans>>,
    seen: Mutex<Vec<Req>>,
}

impl<Req, Ans> Default for Script<Req, Ans> {
    fn default() -> Self {
        Script {
            answers: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl<Req, Ans> Script<Req, Ans> {
    fn answer(&self, a: Ans) {
        self.answers.lock().unwrap().push_back(a);
    }
    fn take(&self, request: Req) -> Ans {
        self.seen.lock().unwrap().push(request);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("an answer was queued")
    }
    fn last(&self) -> Req
    where
        Req: Clone,
    {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request arrived")
    }
}

#[derive(Default)]
struct FakeMessaging {
    register: Script<RegisterRequest, Result<Vec<Binding>, RegistrarError>>,
    message: Script<PageMessage, Result<MessageOutcome, MessagingError>>,
}

#[async_trait]
impl Messaging for FakeMessaging {
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError> {
        self.register.take(request)
    }
    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError> {
        self.message.take(message)
    }
}

#[derive(Default)]
struct FakePresence {
    publish: Script<PublishRequest, Result<PublishOk, PresenceError>>,
    subscribe: Script<SubscribeRequest, Result<SubscribeOk, PresenceError>>,
    closed: Mutex<Vec<FlowToken>>,
    changes: Mutex<Vec<DocumentChange>>,
    /// Never answer a subscribe (to test deadlines).
    hang: bool,
}

#[async_trait]
impl Presence for FakePresence {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        self.publish.take(request)
    }
    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        self.subscribe.take(request)
    }
    async fn flow_closed(&self, flow: FlowToken) {
        self.closed.lock().unwrap().push(flow);
    }
    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        let forbidden = change.auid == "forbidden";
        self.changes.lock().unwrap().push(change);
        if forbidden {
            Err(PresenceError::Forbidden("test".into()))
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
struct FakeEdge {
    send: Script<String, Result<FinalResponse, DeliveryError>>,
    hang: bool,
}

#[async_trait]
impl EdgeDelivery for FakeEdge {
    async fn send_request(
        &self,
        flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        // OutboundRequest has no PartialEq: its Debug shows every field.
        self.send.take(format!("{flow:?} {request:?}"))
    }
}

struct Cluster {
    messaging: Arc<FakeMessaging>,
    presence: Arc<FakePresence>,
    edge: Arc<FakeEdge>,
    addr: SocketAddr,
}

impl Cluster {
    async fn start(presence: FakePresence, edge: FakeEdge) -> Cluster {
        let messaging = Arc::new(FakeMessaging::default());
        let presence = Arc::new(presence);
        let edge = Arc::new(edge);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::builder()
            .add_service(messaging_service(messaging.clone()))
            .add_service(presence_service(presence.clone()))
            .add_service(edge_delivery_service(edge.clone()))
            .serve_with_incoming(TcpIncoming::from(listener));
        tokio::spawn(server);
        Cluster {
            messaging,
            presence,
            edge,
            addr,
        }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn quick() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
    }
}

fn binding(n: u32) -> Binding {
    Binding {
        contact: format!("<sip:alice@10.0.0.{n};transport=tcp>"),
        expires_at: UnixTime(1_700_000_000 + u64::from(n)),
        q: Some(700),
        call_id: "reg@pc".into(),
        cseq: n,
        instance: Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>".into()),
        reg_id: Some(1),
        flow: FlowToken(format!("tcp:{n}")),
    }
}

fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::Conflict(aor("sip:alice@example.com")),
        StoreError::QueueFull(aor("sip:alice@example.com")),
        StoreError::Unavailable("redis: connection refused".into()),
    ]
}

#[tokio::test]
async fn register_answers_and_every_registrar_error_arrive_unchanged() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let client = GrpcMessaging::connect_lazy(cluster.uri(), &quick()).unwrap();

    let mut answers = vec![
        Ok(vec![]),
        Ok(vec![binding(1), binding(2)]),
        Err(RegistrarError::IntervalTooBrief { min_expires: 3600 }),
        Err(RegistrarError::OutOfOrder),
        Err(RegistrarError::InvalidStar),
        Err(RegistrarError::NotFound),
        Err(RegistrarError::TooManyContacts),
    ];
    answers.extend(
        store_errors()
            .into_iter()
            .map(|e| Err(RegistrarError::Store(e))),
    );

    let contact_sets = [
        RegisterContacts::Fetch,
        RegisterContacts::RemoveAll,
        RegisterContacts::Update(vec![
            ContactSpec {
                uri: "<sip:alice@10.0.0.1>".into(),
                expires: Some(0),
                q: Some(1000),
                instance: Some("<urn:uuid:1>".into()),
                reg_id: Some(2),
            },
            ContactSpec {
                uri: "sip:alice@10.0.0.2".into(),
                expires: None,
                q: None,
                instance: None,
                reg_id: None,
            },
        ]),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        let request = RegisterRequest {
            aor: aor("sip:alice@example.com"),
            contacts: contact_sets[i % contact_sets.len()].clone(),
            expires: if i & 1 == 0 { Some(600) } else { None },
            call_id: format!("reg{i}@pc"),
            cseq: i as u32,
            flow: FlowToken("udp:192.0.2.1:5060".into()),
            authenticated: None,
        };
        cluster.messaging.register.answer(answer.clone());
        let got = client.register(request.clone()).await;
        assert_eq!(got, answer);
        assert_eq!(cluster.messaging.register.last(), request);
    }
}

#[tokio::test]
async fn message_outcomes_and_every_messaging_error_arrive_unchanged() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let client = GrpcMessaging::connect_lazy(cluster.uri(), &quick()).unwrap();

    let mut answers = vec![
        Ok(MessageOutcome::Delivered { status: 200 }),
        Ok(MessageOutcome::Stored),
        Ok(MessageOutcome::Rejected {
            status: 486,
            reason: "Busy Here".into(),
        }),
        Err(MessagingError::NotFound),
    ];
    answers.extend(
        store_errors()
            .into_iter()
            .map(|e| Err(MessagingError::Store(e))),
    );

    for (i, answer) in answers.into_iter().enumerate() {
        let message = PageMessage {
            target: aor("sip:bob@example.com"),
            from: "<sip:alice@example.com>;tag=1".into(),
            to: "<sip:bob@example.com>".into(),
            call_id: format!("m{i}@pc"),
            cseq: 1,
            content_type: (i & 1 == 0).then(|| "text/plain".to_owned()),
            headers: vec![("Subject".into(), "hello".into())],
            body: Bytes::from(vec![b'x'; i * 100]),
            max_forwards: 69,
            vias: vec!["SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1".into()],
            authenticated: None,
        };
        cluster.messaging.message.answer(answer.clone());
        assert_eq!(client.message(message.clone()).await, answer);
        assert_eq!(cluster.messaging.message.last(), message);
    }
}

fn presence_errors() -> Vec<PresenceError> {
    let mut errors = vec![
        PresenceError::BadEvent("dialog".into()),
        PresenceError::IntervalTooBrief { min_expires: 60 },
        PresenceError::UnknownETag,
        PresenceError::UnsupportedMediaType {
            got: "text/plain".into(),
            accept: "application/pidf+xml".into(),
        },
        PresenceError::NotAcceptable,
        PresenceError::BadRequest("not well-formed".into()),
        PresenceError::TooLarge,
        PresenceError::Forbidden("winfo of another user".into()),
        PresenceError::NoSuchSubscription,
    ];
    errors.extend(store_errors().into_iter().map(PresenceError::Store));
    errors
}

#[tokio::test]
async fn publish_answers_and_every_presence_error_arrive_unchanged() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let client = GrpcPresence::connect_lazy(cluster.uri(), &quick()).unwrap();

    let mut answers = vec![
        Ok(PublishOk {
            etag: Some(ETag("a1b2".into())),
            expires: 3600,
        }),
        Ok(PublishOk {
            etag: None,
            expires: 0,
        }),
    ];
    answers.extend(presence_errors().into_iter().map(Err));
    for (i, answer) in answers.into_iter().enumerate() {
        let request = PublishRequest {
            presentity: aor("sip:alice@example.com"),
            event: "presence".into(),
            if_match: (i & 1 == 1).then(|| ETag(format!("e{i}"))),
            expires: Some(i as u32),
            content_type: Some("application/pidf+xml".into()),
            body: Bytes::from_static(b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/>"),
            flow: FlowToken("tls:4".into()),
            connection: i & 1 == 0,
            authenticated: Some("sip:alice@example.com".parse().unwrap()),
        };
        cluster.presence.publish.answer(answer.clone());
        assert_eq!(client.publish(request.clone()).await, answer);
        assert_eq!(cluster.presence.publish.last(), request);
    }
}

fn subscribe_request(i: u32) -> SubscribeRequest {
    SubscribeRequest {
        presentity: aor("sip:alice@example.com"),
        watcher: aor("sip:bob@example.com"),
        event: "presence".into(),
        event_id: (i & 1 == 0).then(|| i.to_string()),
        accept: vec!["application/pidf+xml".into()],
        expires: Some(600),
        dialog: SubscribeDialog {
            call_id: format!("s{i}@bob"),
            remote_tag: "ft".into(),
            local_tag: (i & 1 == 1).then(|| "tt".to_owned()),
            remote_uri: "<sip:bob@example.com>;tag=ft".into(),
            local_uri: "<sip:alice@example.com>".into(),
            remote_target: "sip:bob@10.0.0.2:5070".into(),
            route_set: vec!["<sip:proxy.example.com;lr>".into()],
            remote_cseq: i,
        },
        flow: FlowToken("tcp:8".into()),
        connection: true,
        content_type: (i & 1 == 0).then(|| "application/resource-lists+xml".to_owned()),
        body: Bytes::from(format!("<resource-lists n=\"{i}\"/>")),
        authenticated: None,
    }
}

#[tokio::test]
async fn subscribe_answers_every_presence_error_and_flow_closed_arrive_unchanged() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let client = GrpcPresence::connect_lazy(cluster.uri(), &quick()).unwrap();

    let mut answers = vec![Ok(SubscribeOk {
        local_tag: "tt".into(),
        expires: 600,
    })];
    answers.extend(presence_errors().into_iter().map(Err));
    for (i, answer) in answers.into_iter().enumerate() {
        let request = subscribe_request(i as u32);
        cluster.presence.subscribe.answer(answer.clone());
        assert_eq!(client.subscribe(request.clone()).await, answer);
        assert_eq!(cluster.presence.subscribe.last(), request);
    }

    client.flow_closed(FlowToken("ws:12".into())).await;
    client.flow_closed(FlowToken("tcp:13".into())).await;
    assert_eq!(
        *cluster.presence.closed.lock().unwrap(),
        vec![FlowToken("ws:12".into()), FlowToken("tcp:13".into())]
    );

    let change = DocumentChange {
        user: aor("sip:alice@example.com"),
        auid: "pres-rules".into(),
        selector: "pres-rules/users/sip:alice@example.com/index".into(),
        previous_etag: Some("e1".into()),
        new_etag: None,
    };
    assert_eq!(client.documents_changed(change.clone()).await, Ok(()));
    let refused = DocumentChange {
        auid: "forbidden".into(),
        ..change.clone()
    };
    assert_eq!(
        client.documents_changed(refused.clone()).await,
        Err(PresenceError::Forbidden("test".into()))
    );
    assert_eq!(
        *cluster.presence.changes.lock().unwrap(),
        vec![change, refused]
    );
}

fn outbound(method: Method) -> OutboundRequest {
    OutboundRequest {
        method,
        uri: "sip:bob@10.0.0.2:5070;transport=tcp".into(),
        from: "<sip:alice@example.com>;tag=tt".into(),
        to: "<sip:bob@example.com>;tag=ft".into(),
        call_id: "s1@bob".into(),
        cseq: 3,
        relayed_vias: vec![],
        route: vec!["<sip:proxy.example.com;lr>".into()],
        content_type: Some("application/pidf+xml".into()),
        headers: vec![("Subscription-State".into(), "active;expires=599".into())],
        body: Bytes::from_static(b"<presence/>"),
        max_forwards: 70,
        flow_only: true,
    }
}

#[tokio::test]
async fn delivery_answers_and_every_delivery_error_arrive_unchanged() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let client = GrpcEdgeDelivery::connect_lazy(cluster.uri(), &quick()).unwrap();

    let answers = vec![
        Ok(FinalResponse {
            status: 200,
            reason: "OK".into(),
        }),
        Ok(FinalResponse {
            status: 481,
            reason: "Subscription does not exist".into(),
        }),
        Err(DeliveryError::FlowGone("tcp:8".into())),
        Err(DeliveryError::Timeout),
        Err(DeliveryError::Transport("broken pipe".into())),
        Err(DeliveryError::Invalid("bad contact URI".into())),
    ];
    let methods = [
        Method::Notify,
        Method::Message,
        Method::Extension("X-FOO".into()),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        let flow = FlowToken(format!("udp:10.0.0.{i}:5060"));
        let request = outbound(methods[i % methods.len()].clone());
        cluster.edge.send.answer(answer.clone());
        assert_eq!(client.send_request(&flow, request.clone()).await, answer);
        assert_eq!(cluster.edge.send.last(), format!("{flow:?} {request:?}"));
    }
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_shard_that_is_down_answers_unavailable_within_the_deadline() {
    let uri = closed_port().await;
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(1),
        deadline: Duration::from_secs(2),
    };
    let limit = config.deadline + Duration::from_millis(500);

    let messaging = GrpcMessaging::connect_lazy(uri.clone(), &config).unwrap();
    let started = Instant::now();
    let got = messaging
        .register(RegisterRequest {
            aor: aor("sip:alice@example.com"),
            contacts: RegisterContacts::Fetch,
            expires: None,
            call_id: "c".into(),
            cseq: 1,
            flow: FlowToken("udp:x".into()),
            authenticated: None,
        })
        .await;
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    let err = got.unwrap_err();
    assert!(
        matches!(err, RegistrarError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert_eq!(err.status(), 503);

    let presence = GrpcPresence::connect_lazy(uri.clone(), &config).unwrap();
    let started = Instant::now();
    let err = presence.subscribe(subscribe_request(1)).await.unwrap_err();
    assert!(started.elapsed() < limit);
    assert!(matches!(
        err,
        PresenceError::Store(StoreError::Unavailable(_))
    ));
    assert_eq!(err.status(), 503);
    // No error to give, but no hang either.
    let started = Instant::now();
    presence.flow_closed(FlowToken("tcp:1".into())).await;
    assert!(started.elapsed() < limit);

    let edge = GrpcEdgeDelivery::connect_lazy(uri, &config).unwrap();
    let started = Instant::now();
    let err = edge
        .send_request(&FlowToken("tcp:1".into()), outbound(Method::Notify))
        .await
        .unwrap_err();
    assert!(started.elapsed() < limit);
    assert!(matches!(err, DeliveryError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn a_peer_that_never_answers_is_cut_at_the_deadline() {
    let cluster = Cluster::start(
        FakePresence {
            hang: true,
            ..FakePresence::default()
        },
        FakeEdge {
            hang: true,
            ..FakeEdge::default()
        },
    )
    .await;
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(1),
        deadline: Duration::from_millis(300),
    };
    let limit = Duration::from_secs(2);

    let presence = GrpcPresence::connect_lazy(cluster.uri(), &config).unwrap();
    let started = Instant::now();
    let err = presence.subscribe(subscribe_request(1)).await.unwrap_err();
    assert!(started.elapsed() >= config.deadline);
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    assert!(
        matches!(err, PresenceError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );

    let edge = GrpcEdgeDelivery::connect_lazy(cluster.uri(), &config).unwrap();
    let started = Instant::now();
    let err = edge
        .send_request(&FlowToken("tcp:1".into()), outbound(Method::Notify))
        .await
        .unwrap_err();
    assert!(started.elapsed() < limit);
    assert_eq!(err, DeliveryError::Timeout);
}

/// Requests no Herald client would send (a peer of another version, or a
/// bug) get an error answer, never a crash.
#[tokio::test]
async fn malformed_requests_get_error_answers() {
    use proto::edge::v1::edge_delivery_client::EdgeDeliveryClient;
    use proto::edge::v1::{send_request_response, SendRequestRequest};
    use proto::messaging::v1::messaging_client::MessagingClient;
    use proto::presence::v1::presence_client::PresenceClient;
    use proto::presence::v1::{publish_response, PublishRequest as PbPublish};

    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;

    let mut presence = PresenceClient::connect(cluster.uri()).await.unwrap();
    let answer = presence
        .publish(PbPublish {
            presentity: "sip:alice@example.com".into(),
            flow: None,
            ..PbPublish::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(publish_response::Result::Error(e)) = answer.result else {
        panic!("expected an error answer, got {answer:?}");
    };
    let e = PresenceError::try_from(e).unwrap();
    assert!(matches!(e, PresenceError::BadRequest(_)), "{e:?}");
    assert_eq!(e.status(), 400);

    let mut edge = EdgeDeliveryClient::connect(cluster.uri()).await.unwrap();
    let answer = edge
        .send_request(SendRequestRequest {
            flow: Some(proto::common::v1::FlowToken { token: "f".into() }),
            request: None,
        })
        .await
        .unwrap()
        .into_inner();
    let Some(send_request_response::Result::Error(e)) = answer.result else {
        panic!("expected an error answer, got {answer:?}");
    };
    assert!(matches!(
        DeliveryError::try_from(e).unwrap(),
        DeliveryError::Invalid(_)
    ));

    let mut messaging = MessagingClient::connect(cluster.uri()).await.unwrap();
    let status = messaging
        .register(proto::messaging::v1::RegisterRequest {
            aor: "not an aor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // The fakes were never called, and the server still serves.
    assert!(cluster.presence.publish.seen.lock().unwrap().is_empty());
    assert!(cluster.edge.send.seen.lock().unwrap().is_empty());
    assert!(cluster.messaging.register.seen.lock().unwrap().is_empty());
    cluster.presence.publish.answer(Ok(PublishOk {
        etag: None,
        expires: 0,
    }));
    let client = GrpcPresence::connect_lazy(cluster.uri(), &quick()).unwrap();
    let ok = client
        .publish(PublishRequest {
            presentity: aor("sip:alice@example.com"),
            event: "presence".into(),
            if_match: Some(ETag("x".into())),
            expires: Some(0),
            content_type: None,
            body: Bytes::new(),
            flow: FlowToken("tcp:1".into()),
            connection: true,
            authenticated: None,
        })
        .await;
    assert_eq!(
        ok,
        Ok(PublishOk {
            etag: None,
            expires: 0
        })
    );
}

/// `--presence-shards 10.0.0.5:7000` (no scheme) reaches the shard: tonic
/// takes a bare authority as a URI and used to fail only at the first call.
#[tokio::test]
async fn an_address_without_a_scheme_is_taken_as_http() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let bare = cluster.addr.to_string();
    assert!(!bare.contains("://"));
    let client = GrpcMessaging::connect_lazy(bare, &quick()).unwrap();
    cluster.messaging.message.answer(Ok(MessageOutcome::Stored));
    let request = PageMessage {
        target: aor("sip:bob@example.com"),
        from: "<sip:alice@example.com>;tag=1".into(),
        to: "<sip:bob@example.com>".into(),
        call_id: "bare@pc".into(),
        cseq: 1,
        content_type: Some("text/plain".into()),
        headers: vec![],
        body: Bytes::from_static(b"hi"),
        max_forwards: 70,
        vias: vec!["SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2".into()],
        authenticated: None,
    };
    assert_eq!(client.message(request).await, Ok(MessageOutcome::Stored));
}

/// A MESSAGE whose edge fails mid-way goes out through another edge with the
/// next CSeq: the first may have reached the client, and the same CSeq on a
/// new branch would be a merged request it answers 482.
#[tokio::test]
async fn a_message_retried_through_another_edge_has_a_new_cseq() {
    let cluster = Cluster::start(FakePresence::default(), FakeEdge::default()).await;
    let dead = closed_port().await;
    let router = EdgeRouter::new(vec![dead.clone(), cluster.uri()], quick());
    let flow = FlowToken(format!("{dead}#udp/10.0.0.9:5060"));
    let request = outbound(Method::Message);
    cluster.edge.send.answer(Ok(FinalResponse {
        status: 200,
        reason: "OK".into(),
    }));
    let got = router.send_request(&flow, request.clone()).await;
    assert_eq!(got.map(|r| r.status), Ok(200));
    let retried = OutboundRequest {
        cseq: request.cseq + 1,
        ..request
    };
    assert_eq!(cluster.edge.send.last(), format!("{flow:?} {retried:?}"));
}
