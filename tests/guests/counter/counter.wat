;; counter.wat: a stateful component for component-to-component linking tests.
;;
;;     package test:state;
;;     interface counter { next: func() -> u32; }   // 1, 2, 3, ... per instance
;;     world counter { export counter; }
(component
  (core module $m
    (global $count (mut i32) (i32.const 0))
    (func (export "next") (result i32)
      (global.set $count (i32.add (global.get $count) (i32.const 1)))
      (global.get $count)))
  (core instance $i (instantiate $m))
  (func $next (result u32) (canon lift (core func $i "next")))
  (instance $api (export "next" (func $next)))
  (export "test:state/counter" (instance $api)))
