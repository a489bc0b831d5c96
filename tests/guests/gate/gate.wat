;; gate.wat: backpressure, written by hand. `close` raises the instance's backpressure
;; (backpressure.inc), `open` lowers it (backpressure.dec); while it is raised no new async
;; task may start in the instance, so a call to `wait` waits at the door.
;;
;;     package test:gate;
;;     interface api {
;;         wait: async func(x: u32) -> u32;   // task.return(x + 1), then EXIT
;;         close: func();                     // backpressure.inc
;;         open: func();                      // backpressure.dec
;;     }
;;     world gate { export api; }
(component
  (core func $task-return (canon task.return (result u32)))
  (core func $bp-inc (canon backpressure.inc))
  (core func $bp-dec (canon backpressure.dec))
  (core module $m
    (import "" "task-return" (func $task-return (param i32)))
    (import "" "bp-inc" (func $bp-inc))
    (import "" "bp-dec" (func $bp-dec))
    (func (export "wait") (param $x i32) (result i32)
      (call $task-return (i32.add (local.get $x) (i32.const 1)))
      (i32.const 0))
    (func (export "callback") (param i32 i32 i32) (result i32) (i32.const 0))
    (func (export "close") (call $bp-inc))
    (func (export "open") (call $bp-dec)))
  (core instance $i (instantiate $m (with "" (instance
      (export "task-return" (func $task-return)) (export "bp-inc" (func $bp-inc)) (export "bp-dec" (func $bp-dec))))))
  (func $wait async (param "x" u32) (result u32)
    (canon lift (core func $i "wait") async (callback (core func $i "callback"))))
  (func $close (canon lift (core func $i "close")))
  (func $open (canon lift (core func $i "open")))
  (instance $api (export "wait" (func $wait)) (export "close" (func $close)) (export "open" (func $open)))
  (export "test:gate/api" (instance $api)))
