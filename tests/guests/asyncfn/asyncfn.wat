;; asyncfn.wat: `async func` exports lifted with the component-model async ABI in its
;; callback form (as componentize-py 0.25, wit-bindgen and Go build them), next to an
;; ordinary function, written by hand so each does one small thing:
;;
;;     package test:asyncfn;
;;     interface api {
;;         wait: async func(x: u32) -> u32;     // task.return(x + 1), then EXIT
;;         forget: async func(x: u32) -> u32;   // EXIT without task.return: a trap
;;         ping: func(x: u32) -> u32;           // x + 1
;;     }
;;     world asyncfn { export api; }
(component
  (core func $task-return (canon task.return (result u32)))
  (core module $m
    (import "" "task-return" (func $task-return (param i32)))
    (func (export "wait") (param $x i32) (result i32)
      (call $task-return (i32.add (local.get $x) (i32.const 1)))
      (i32.const 0))  ;; callback code 0: EXIT
    (func (export "forget") (param i32) (result i32) (i32.const 0))
    (func (export "callback") (param i32 i32 i32) (result i32) (i32.const 0))
    (func (export "ping") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))
  (core instance $i (instantiate $m (with "" (instance (export "task-return" (func $task-return))))))
  (func $wait async (param "x" u32) (result u32)
    (canon lift (core func $i "wait") async (callback (core func $i "callback"))))
  (func $forget async (param "x" u32) (result u32)
    (canon lift (core func $i "forget") async (callback (core func $i "callback"))))
  (func $ping (param "x" u32) (result u32) (canon lift (core func $i "ping")))
  (instance $api (export "wait" (func $wait)) (export "forget" (func $forget)) (export "ping" (func $ping)))
  (export "test:asyncfn/api" (instance $api)))
