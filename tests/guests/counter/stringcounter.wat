;; stringcounter.wat: exports `test:state/counter` with the WRONG type (next returns a
;; bool instead of a u32), to show that linking checks types structurally.
(component
  (core module $m (func (export "next") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func $next (result bool) (canon lift (core func $i "next")))
  (instance $api (export "next" (func $next)))
  (export "test:state/counter" (instance $api)))
