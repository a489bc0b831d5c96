;; asynccompose.wat: async calls between two composed components, written by hand.
;; A `server` component lifts `add` async (it waits on the host's async `tick` before it
;; returns) and `mul` (an async func type) without the async option, so it runs to its end; a `client` component lowers both async and exports `relay-add`,
;; `relay-mul` and `cancel-add` (starts `add`, cancels it at once with the async form of
;; subtask.cancel, and returns the state the SUBTASK event reports). The outer component
;; exports the client's functions and the server's `add` too.
;;
;;     package test:asynccompose;
;;     interface host { tick: async func(x: u32) -> u32; }
;;     interface api {
;;         relay-add: async func(a: u32, b: u32) -> u32;   // client -> server.add (async, waits)
;;         relay-mul: async func(a: u32, b: u32) -> u32;   // client -> server.mul (sync lift)
;;         cancel-add: async func(a: u32, b: u32) -> u32;  // client cancels server.add: the state
;;         add: async func(a: u32, b: u32) -> u32;         // server.add, called from the host
;;         server-close: func();                            // server: backpressure.inc
;;         server-open: func();                             // server: backpressure.dec
;;     }
;;     world asynccompose { import host; export api; }
;;
;; The server's add: tick(a + b) (a subtask it waits for), then task.return(tick's result + 1000).
;; On TASK_CANCELLED it cancels its tick (async form), waits for that, then task.cancel.
;; Both components keep one task's state in globals (the tests run one call at a time).
(component
  (import "test:asynccompose/host" (instance $host (export "tick" (func async (param "x" u32) (result u32)))))

  (component $server
    (import "tick" (func $tick async (param "x" u32) (result u32)))
    (core module $mem (memory (export "mem") 1))
    (core instance $memi (instantiate $mem))
    (alias core export $memi "mem" (core memory $memory))
    (core func $tick-lowered (canon lower (func $tick) async (memory $memory)))
    (core func $task-return (canon task.return (result u32)))
    (core func $task-cancel (canon task.cancel))
    (core func $wset-new (canon waitable-set.new))
    (core func $join (canon waitable.join))
    (core func $subtask-cancel (canon subtask.cancel async))
    (core func $subtask-drop (canon subtask.drop))
    (core func $bp-inc (canon backpressure.inc))
    (core func $bp-dec (canon backpressure.dec))
    (core module $m
      (import "" "mem" (memory 1))
      (import "" "bp-inc" (func $bp-inc))
      (import "" "bp-dec" (func $bp-dec))
      (import "" "tick" (func $tick (param i32 i32) (result i32)))
      (import "" "task-return" (func $task-return (param i32)))
      (import "" "task-cancel" (func $task-cancel))
      (import "" "wset-new" (func $wset-new (result i32)))
      (import "" "join" (func $join (param i32 i32)))
      (import "" "subtask-cancel" (func $subtask-cancel (param i32) (result i32)))
      (import "" "subtask-drop" (func $subtask-drop (param i32)))
      (global $sub (mut i32) (i32.const 0))
      (global $set (mut i32) (i32.const 0))
      (func (export "add") (param $a i32) (param $b i32) (result i32)
        (local $packed i32)
        (local.set $packed (call $tick (i32.add (local.get $a) (local.get $b)) (i32.const 16)))
        (if (i32.eq (i32.and (local.get $packed) (i32.const 15)) (i32.const 2 (; RETURNED ;)))
          (then
            (call $task-return (i32.add (i32.load (i32.const 16)) (i32.const 1000)))
            (return (i32.const 0 (; EXIT ;)))))
        (global.set $sub (i32.shr_u (local.get $packed) (i32.const 4)))
        (global.set $set (call $wset-new))
        (call $join (global.get $sub) (global.get $set))
        (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (global.get $set) (i32.const 4))))
      (func (export "add-callback") (param $event i32) (param $p1 i32) (param $p2 i32) (result i32)
        (local $state i32)
        ;; TASK_CANCELLED: cancel tick; if that resolves now, acknowledge, else wait for it
        (if (i32.eq (local.get $event) (i32.const 6))
          (then
            (local.set $state (call $subtask-cancel (global.get $sub)))
            (if (i32.eq (local.get $state) (i32.const -1 (; BLOCKED ;)))
              (then (return (i32.or (i32.const 2) (i32.shl (global.get $set) (i32.const 4))))))
            (call $join (global.get $sub) (i32.const 0))
            (call $subtask-drop (global.get $sub))
            (call $task-cancel)
            (return (i32.const 0))))
        ;; SUBTASK RETURNED: pass tick's result on, plus 1000
        (if (i32.and (i32.eq (local.get $event) (i32.const 1)) (i32.eq (local.get $p2) (i32.const 2)))
          (then
            (call $join (global.get $sub) (i32.const 0))
            (call $subtask-drop (global.get $sub))
            (call $task-return (i32.add (i32.load (i32.const 16)) (i32.const 1000)))
            (return (i32.const 0))))
        unreachable)
      (func (export "mul") (param i32 i32) (result i32) (i32.mul (local.get 0) (local.get 1)))
      (func (export "close") (call $bp-inc))
      (func (export "open") (call $bp-dec)))
    (core instance $i (instantiate $m (with "" (instance
        (export "mem" (memory $memory)) (export "tick" (func $tick-lowered))
        (export "bp-inc" (func $bp-inc)) (export "bp-dec" (func $bp-dec))
        (export "task-return" (func $task-return)) (export "task-cancel" (func $task-cancel))
        (export "wset-new" (func $wset-new)) (export "join" (func $join))
        (export "subtask-cancel" (func $subtask-cancel)) (export "subtask-drop" (func $subtask-drop))))))
    (func $add async (param "a" u32) (param "b" u32) (result u32)
      (canon lift (core func $i "add") async (callback (core func $i "add-callback"))))
    (func $mul async (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "mul")))
    (func $close (canon lift (core func $i "close")))
    (func $open (canon lift (core func $i "open")))
    (export "add" (func $add))
    (export "mul" (func $mul))
    (export "close" (func $close))
    (export "open" (func $open)))

  (component $client
    (import "add" (func $add async (param "a" u32) (param "b" u32) (result u32)))
    (import "mul" (func $mul async (param "a" u32) (param "b" u32) (result u32)))
    (core module $mem (memory (export "mem") 1))
    (core instance $memi (instantiate $mem))
    (alias core export $memi "mem" (core memory $memory))
    (core func $add-lowered (canon lower (func $add) async (memory $memory)))
    (core func $mul-lowered (canon lower (func $mul) async (memory $memory)))
    (core func $task-return (canon task.return (result u32)))
    (core func $wset-new (canon waitable-set.new))
    (core func $join (canon waitable.join))
    (core func $subtask-cancel (canon subtask.cancel async))
    (core func $subtask-drop (canon subtask.drop))
    (core module $m
      (import "" "mem" (memory 1))
      (import "" "add" (func $add (param i32 i32 i32) (result i32)))
      (import "" "mul" (func $mul (param i32 i32 i32) (result i32)))
      (import "" "task-return" (func $task-return (param i32)))
      (import "" "wset-new" (func $wset-new (result i32)))
      (import "" "join" (func $join (param i32 i32)))
      (import "" "subtask-cancel" (func $subtask-cancel (param i32) (result i32)))
      (import "" "subtask-drop" (func $subtask-drop (param i32)))
      (global $sub (mut i32) (i32.const 0))
      (global $set (mut i32) (i32.const 0))
      (global $cancelling (mut i32) (i32.const 0))
      ;; after a call that returned STARTED/STARTING: wait for its subtask
      (func $wait-for (param $packed i32) (result i32)
        (global.set $sub (i32.shr_u (local.get $packed) (i32.const 4)))
        (global.set $set (call $wset-new))
        (call $join (global.get $sub) (global.get $set))
        (i32.or (i32.const 2) (i32.shl (global.get $set) (i32.const 4))))
      (func $returned-at-once (param $packed i32) (result i32)
        (i32.eq (i32.and (local.get $packed) (i32.const 15)) (i32.const 2)))
      (func (export "relay-add") (param $a i32) (param $b i32) (result i32)
        (local $packed i32)
        (global.set $cancelling (i32.const 0))
        (local.set $packed (call $add (local.get $a) (local.get $b) (i32.const 32)))
        (if (call $returned-at-once (local.get $packed))
          (then (call $task-return (i32.load (i32.const 32))) (return (i32.const 0))))
        (call $wait-for (local.get $packed)))
      (func (export "relay-mul") (param $a i32) (param $b i32) (result i32)
        (local $packed i32)
        (local.set $packed (call $mul (local.get $a) (local.get $b) (i32.const 32)))
        (if (i32.eqz (call $returned-at-once (local.get $packed))) (then unreachable))
        (call $task-return (i32.load (i32.const 32)))
        (i32.const 0))
      (func (export "cancel-add") (param $a i32) (param $b i32) (result i32)
        (local $packed i32) (local $state i32)
        (global.set $cancelling (i32.const 1))
        (local.set $packed (call $add (local.get $a) (local.get $b) (i32.const 32)))
        (if (call $returned-at-once (local.get $packed)) (then unreachable))
        (local.set $state (call $subtask-cancel (i32.shr_u (local.get $packed) (i32.const 4))))
        (if (i32.ne (local.get $state) (i32.const -1)) (then unreachable))  ;; the server decides later
        (call $wait-for (local.get $packed)))
      (func (export "callback") (param $event i32) (param $p1 i32) (param $p2 i32) (result i32)
        ;; SUBTASK: RETURNED (2) passes the value on; with cancel-add, any final state is the answer
        (if (i32.ne (local.get $event) (i32.const 1)) (then unreachable))
        (if (i32.lt_u (local.get $p2) (i32.const 2)) (then  ;; STARTING -> STARTED: keep waiting
          (return (i32.or (i32.const 2) (i32.shl (global.get $set) (i32.const 4))))))
        (call $join (global.get $sub) (i32.const 0))
        (call $subtask-drop (global.get $sub))
        (if (global.get $cancelling)
          (then (call $task-return (local.get $p2)))
          (else (call $task-return (i32.load (i32.const 32)))))
        (i32.const 0)))
    (core instance $i (instantiate $m (with "" (instance
        (export "mem" (memory $memory)) (export "add" (func $add-lowered)) (export "mul" (func $mul-lowered))
        (export "task-return" (func $task-return)) (export "wset-new" (func $wset-new))
        (export "join" (func $join)) (export "subtask-cancel" (func $subtask-cancel))
        (export "subtask-drop" (func $subtask-drop))))))
    (func $relay-add async (param "a" u32) (param "b" u32) (result u32)
      (canon lift (core func $i "relay-add") async (callback (core func $i "callback"))))
    (func $relay-mul async (param "a" u32) (param "b" u32) (result u32)
      (canon lift (core func $i "relay-mul") async (callback (core func $i "callback"))))
    (func $cancel-add async (param "a" u32) (param "b" u32) (result u32)
      (canon lift (core func $i "cancel-add") async (callback (core func $i "callback"))))
    (export "relay-add" (func $relay-add))
    (export "relay-mul" (func $relay-mul))
    (export "cancel-add" (func $cancel-add)))

  (alias export $host "tick" (func $tick))
  (instance $s (instantiate $server (with "tick" (func $tick))))
  (alias export $s "add" (func $add))
  (alias export $s "mul" (func $mul))
  (alias export $s "close" (func $close))
  (alias export $s "open" (func $open))
  (instance $c (instantiate $client (with "add" (func $add)) (with "mul" (func $mul))))
  (alias export $c "relay-add" (func $relay-add))
  (alias export $c "relay-mul" (func $relay-mul))
  (alias export $c "cancel-add" (func $cancel-add))
  (instance $api (export "relay-add" (func $relay-add)) (export "relay-mul" (func $relay-mul))
    (export "cancel-add" (func $cancel-add)) (export "add" (func $add))
    (export "server-close" (func $close)) (export "server-open" (func $open)))
  (export "test:asynccompose/api" (instance $api)))
