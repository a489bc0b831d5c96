;; twoborrows.wat: a guest that hands a host function TWO borrowed handles in one call.
;;
;; The WIT it implements (see also `wasm-tools component wit` of the built binary):
;;
;;     package test:twoborrows;
;;     interface host {
;;       resource r {
;;         constructor(v: u32);
;;         value: func() -> u32;                          // one borrow (self)
;;       }
;;       sum: func(a: borrow<r>, b: borrow<r>) -> u32;    // two borrows
;;     }
;;     world twoborrows {
;;       import host;
;;       export run: func() -> u32;         // r(20), r(22), sum(borrow, borrow), drop both -> 42
;;       export run-single: func() -> u32;  // r(7), r.value() with one borrow, drop -> 7
;;     }
;;
;; Why it exists: wasmtime 50.0.x traps on any guest->host call that carries two or more
;; borrows ("BUG: deferred host scope has no call context"); 49.0.0 is fine. `run` keeps
;; that case under test so an upgrade that fixes it is noticed; `run-single` is the
;; control (one borrow works on both versions).
(component
  ;; ---- the imported interface ------------------------------------------------------
  (import "test:twoborrows/host" (instance $host
    (export "r" (type $r (sub resource)))
    (export "[constructor]r" (func (param "v" u32) (result (own $r))))
    (export "[method]r.value" (func (param "self" (borrow $r)) (result u32)))
    (export "sum" (func (param "a" (borrow $r)) (param "b" (borrow $r)) (result u32)))))

  (alias export $host "r" (type $r))
  (alias export $host "[constructor]r" (func $r-new))
  (alias export $host "[method]r.value" (func $r-value))
  (alias export $host "sum" (func $sum))

  ;; Lower the host functions to core functions. A handle is an i32 index into this
  ;; component instance's handle table; borrow<r> params are passed the same way.
  (core func $r-new-core (canon lower (func $r-new)))
  (core func $r-value-core (canon lower (func $r-value)))
  (core func $sum-core (canon lower (func $sum)))
  (core func $r-drop-core (canon resource.drop $r))

  (core instance $host-core
    (export "r-new" (func $r-new-core))
    (export "r-value" (func $r-value-core))
    (export "sum" (func $sum-core))
    (export "r-drop" (func $r-drop-core)))

  ;; ---- the guest's code ------------------------------------------------------------
  (core module $guest
    (import "host" "r-new" (func $r-new (param i32) (result i32)))
    (import "host" "r-value" (func $r-value (param i32) (result i32)))
    (import "host" "sum" (func $sum (param i32 i32) (result i32)))
    (import "host" "r-drop" (func $r-drop (param i32)))

    ;; run: two owned handles, both lent to one `sum` call, then dropped.
    (func (export "run") (result i32)
      (local $a i32) (local $b i32) (local $total i32)
      (local.set $a (call $r-new (i32.const 20)))
      (local.set $b (call $r-new (i32.const 22)))
      (local.set $total (call $sum (local.get $a) (local.get $b)))
      (call $r-drop (local.get $a))
      (call $r-drop (local.get $b))
      (local.get $total))

    ;; run-single: the control case, one borrow per host call.
    (func (export "run-single") (result i32)
      (local $a i32) (local $v i32)
      (local.set $a (call $r-new (i32.const 7)))
      (local.set $v (call $r-value (local.get $a)))
      (call $r-drop (local.get $a))
      (local.get $v)))

  (core instance $guest-instance (instantiate $guest (with "host" (instance $host-core))))

  ;; ---- exports -----------------------------------------------------------------------
  (func (export "run") (result u32)
    (canon lift (core func $guest-instance "run")))
  (func (export "run-single") (result u32)
    (canon lift (core func $guest-instance "run-single")))
)
