// Sign in or create an account; registering signs in.
import { useState, type FormEvent } from "react";
import { useClient } from "urql";
import { LoginMutation, RegisterMutation } from "../../api/documents";
import { problems, splitByField } from "../../api/graphqlErrors";
import { useSession } from "../../app/SessionContext";
import { Field, FormError } from "../../components/Field";

type Mode = "sign-in" | "register";
const FIELDS = ["email", "password"] as const;

export function AuthPage({ notice }: { notice?: string | undefined }) {
  const [mode, setMode] = useState<Mode>("sign-in");
  return (
    <main className="auth-page" id="main">
      <h1 className="brand">taskgraph</h1>
      <div className="card auth-card">
        <div className="tabs" role="tablist" aria-label="Account">
          {(["sign-in", "register"] as const).map((value) => (
            <button
              key={value}
              type="button"
              role="tab"
              id={`tab-${value}`}
              aria-selected={mode === value}
              aria-controls="auth-panel"
              className={mode === value ? "tab active" : "tab"}
              onClick={() => setMode(value)}
            >
              {value === "sign-in" ? "Sign in" : "Create account"}
            </button>
          ))}
        </div>
        <div role="tabpanel" id="auth-panel" aria-labelledby={`tab-${mode}`}>
          {notice && (
            <p className="notice" role="status">
              {notice}
            </p>
          )}
          <AuthForm key={mode} mode={mode} />
        </div>
      </div>
    </main>
  );
}

export function AuthForm({ mode }: { mode: Mode }) {
  const client = useClient();
  const session = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<{ byField: Record<string, string>; general: string[] }>({
    byField: {},
    general: [],
  });

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const variables = { email: email.trim(), password };
    const result =
      mode === "sign-in"
        ? await client.mutation(LoginMutation, variables).toPromise()
        : await client.mutation(RegisterMutation, variables).toPromise();
    setBusy(false);
    const grant = result.data && ("login" in result.data ? result.data.login : result.data.register);
    if (grant) {
      session.signIn(grant);
      return;
    }
    setErrors(splitByField(problems(result.error), FIELDS));
  }

  const submitLabel = mode === "sign-in" ? "Sign in" : "Create account";
  return (
    <form onSubmit={submit} noValidate aria-busy={busy}>
      <Field
        label="Email"
        name="email"
        type="email"
        autoComplete="email"
        required
        value={email}
        onChange={(e) => setEmail(e.target.value)}
        error={errors.byField.email}
      />
      <Field
        label="Password"
        name="password"
        type="password"
        autoComplete={mode === "sign-in" ? "current-password" : "new-password"}
        required
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={errors.byField.password}
        hint={mode === "register" ? "8 to 72 characters, with a letter and a digit." : undefined}
      />
      <FormError messages={errors.general} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Please wait…" : submitLabel}
      </button>
    </form>
  );
}
