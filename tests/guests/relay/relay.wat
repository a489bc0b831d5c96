;; relay.wat: imports `test:state/counter` and exports it again, forwarding each call.
;; Linked to a counter component, it shows whether two clients share one counter
;; instance (shared state) or each got a private one.
;;
;;     package test:state;
;;     world relay { import counter; export counter; }
(component
  (import "test:state/counter" (instance $upstream (export "next" (func (result u32)))))
  (alias export $upstream "next" (func $upstream_next))
  (core func $lowered (canon lower (func $upstream_next)))
  (core module $m
    (import "upstream" "next" (func $next (result i32)))
    (func (export "next") (result i32) (call $next)))
  (core instance $i (instantiate $m (with "upstream" (instance (export "next" (func $lowered))))))
  (func $next (result u32) (canon lift (core func $i "next")))
  (instance $api (export "next" (func $next)))
  (export "test:state/counter" (instance $api)))
