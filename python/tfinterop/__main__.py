from tfinterop.cli import main

raise SystemExit(main())
