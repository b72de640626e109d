import './app.css';
import 'uplot/dist/uPlot.min.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { adoptLinkToken } from './lib/app.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('#app is missing from index.html');

adoptLinkToken();
export default mount(App, { target });
