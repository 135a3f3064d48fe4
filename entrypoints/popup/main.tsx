import { render } from 'preact';

function Popup() {
  return <main>Recycled Reader</main>;
}

render(<Popup />, document.getElementById('app')!);
