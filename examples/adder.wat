;; adder.wat: the smallest useful WebAssembly component, written by hand in the
;; component text format. It exports one interface,
;;
;;     package docs:adder@0.1.0;
;;     interface add { add: func(x: u32, y: u32) -> u32; }
;;     world adder { export add; }
;;
;; (the example from the Component Model book, component-docs). Rebuild the binary with
;;
;;     wasm-tools parse examples/adder.wat -o examples/adder.wasm
;;
;; tests/test_guests_build.py checks that examples/adder.wasm matches this file.
(component
  ;; A core WebAssembly module does the arithmetic. u32 is passed as i32 in the
  ;; canonical ABI, and i32.add wraps modulo 2^32, just as u32 addition should.
  (core module $adder-core
    (func (export "add") (param $x i32) (param $y i32) (result i32)
      local.get $x
      local.get $y
      i32.add))

  ;; Instantiate it; it needs no imports.
  (core instance $adder-core-instance (instantiate $adder-core))

  ;; Lift the core function into a component function with WIT-level types.
  ;; No memory or realloc is needed: only scalars cross the boundary.
  (func $add (param "x" u32) (param "y" u32) (result u32)
    (canon lift (core func $adder-core-instance "add")))

  ;; Group the function into an instance and export it under the interface's
  ;; full name; that is what makes it `docs:adder/add@0.1.0` in WIT.
  (instance $add-interface
    (export "add" (func $add)))
  (export "docs:adder/add@0.1.0" (instance $add-interface))
)
